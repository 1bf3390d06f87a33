using System.IO.Compression;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>A damaged model file (truncated, corrupt, not a zip, an entry missing) fails to load with an exception.</summary>
[TestClass]
public sealed class DamagedModelFileTests : ModelZipTestBase
{
    [TestMethod]
    public void Load_TruncatedZip_Throws()
    {
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<InvalidDataException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ZipWithACorruptEntry_Throws()
    {
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant));
        CorruptEntry(path, "Model.key");

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<InvalidDataException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ValidZipWithATruncatedModelKey_Throws()
    {
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant));
        RewriteEntry(path, "Model.key", bytes => bytes[..(bytes.Length / 2)]);

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<FormatException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ValidZipWithADamagedModelKeyHeader_Throws()
    {
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant));
        RewriteEntry(path, "Model.key", bytes =>
        {
            bytes[0] ^= 0xFF; // the 'ML MODEL' signature at the start of ML.NET's 256-byte model header
            return bytes;
        });

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<FormatException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_FileThatIsNoZip_Throws()
    {
        var path = Path.Combine(TempDirectory, "not-a-model.zip");
        File.WriteAllText(path, "this is not a model");

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<InvalidDataException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ZipMissingTheBinaryEntry_ThrowsFormatExceptionNamingIt()
    {
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant));
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            zip.Entries.Single(e => e.Name == AddConstantTransformer.ConstantEntry).Delete();

        var format = Innermost(LoadAndCatch(path));

        Assert.IsInstanceOfType<FormatException>(format);
        StringAssert.Contains(format.Message, AddConstantTransformer.ConstantEntry);
    }

    /// <summary>Replaces the content of every entry named <paramref name="entryName"/>, keeping the zip valid.</summary>
    private static void RewriteEntry(string path, string entryName, Func<byte[], byte[]> rewrite)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        foreach (var entry in zip.Entries.Where(e => e.Name == entryName).ToList())
        {
            byte[] content;
            using (var stream = entry.Open())
            using (var buffer = new MemoryStream())
            {
                stream.CopyTo(buffer);
                content = buffer.ToArray();
            }
            var fullName = entry.FullName;
            entry.Delete();
            using var replacement = zip.CreateEntry(fullName).Open();
            replacement.Write(rewrite(content));
        }
    }

    /// <summary>Flips bytes in the middle of an entry's stored (compressed) data, leaving the zip's directory intact.</summary>
    private static void CorruptEntry(string path, string entryName)
    {
        long dataStart;
        long dataLength;
        using (var zip = ZipFile.OpenRead(path))
        {
            var entry = zip.Entries.First(e => e.Name == entryName);
            dataLength = entry.CompressedLength;
            // The local header is 30 bytes + name + extra; find it by its signature and the entry name.
            var bytes = File.ReadAllBytes(path);
            var nameBytes = System.Text.Encoding.UTF8.GetBytes(entry.FullName);
            dataStart = FindLocalData(bytes, nameBytes);
        }
        var content = File.ReadAllBytes(path);
        for (var i = dataStart + dataLength / 4; i < dataStart + 3 * dataLength / 4; i++) content[i] ^= 0x5A;
        File.WriteAllBytes(path, content);
    }

    private static long FindLocalData(byte[] zip, byte[] name)
    {
        for (var i = 0; i + 30 + name.Length <= zip.Length; i++)
        {
            if (zip[i] != 0x50 || zip[i + 1] != 0x4B || zip[i + 2] != 0x03 || zip[i + 3] != 0x04) continue;
            var nameLength = BitConverter.ToUInt16(zip, i + 26);
            var extraLength = BitConverter.ToUInt16(zip, i + 28);
            if (nameLength == name.Length && zip.AsSpan(i + 30, nameLength).SequenceEqual(name))
                return i + 30 + nameLength + extraLength;
        }
        throw new InvalidOperationException("Local header not found.");
    }
}
