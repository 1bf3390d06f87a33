using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Hardening;

/// <summary>Damaged and foreign files: each gives an exception naming the file or part, what was expected and found.</summary>
[TestClass]
public sealed class BadFileTests
{
    public TestContext TestContext { get; set; } = null!;
    private string folder = null!;

    [TestInitialize]
    public void Create() => folder = Directory.CreateTempSubdirectory("linformer-badfiles-").FullName;

    [TestCleanup]
    public void Delete() => Directory.Delete(folder, recursive: true);

    private string SavedModel(string name = "model.zip")
    {
        var ml = new MLContext(seed: 8);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, 1));
        var path = Path.Combine(folder, name);
        using var model = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        ml.Model.Save(model, data.Schema, path);
        return path;
    }

    private Exception LoadFails(string path)
    {
        Exception? caught = null;
        try { ((IDisposable)new MLContext().Model.Load(path, out _)).Dispose(); }
        catch (Exception ex) { caught = ex; }
        Assert.IsNotNull(caught, $"loading '{Path.GetFileName(path)}' must fail");
        TestContext.WriteLine($"{Path.GetFileName(path)}: {Tiny.Messages(caught)}");
        return caught;
    }

    private static void RewriteEntry(string path, Func<string, bool> which, Func<byte[], byte[]> change)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        var entry = zip.Entries.Single(e => which(e.FullName));
        byte[] bytes;
        using (var s = entry.Open()) { var ms = new MemoryStream(); s.CopyTo(ms); bytes = ms.ToArray(); }
        var name = entry.FullName;
        entry.Delete();
        using var w = zip.CreateEntry(name).Open();
        w.Write(change(bytes));
    }

    private static bool IsWeights(string name) => name.EndsWith("LinformerWeights", StringComparison.Ordinal);

    [TestMethod]
    public void TruncatedModelZip()
    {
        var path = SavedModel();
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
        var ex = LoadFails(path);
        Assert.IsInstanceOfType<InvalidDataException>(Tiny.Chain(ex).Last(), "System.IO.Compression reports the missing central directory");
    }

    [TestMethod]
    public void FlippedBytesInsideTheWeightsEntryAreCaughtByTheChecksum()
    {
        var path = SavedModel();
        // A valid zip (the entry is rewritten, so its CRC matches) with weights that differ in a few bytes: without the
        // SHA-256 this would load as a silently different model.
        RewriteEntry(path, IsWeights, bytes => { bytes[bytes.Length / 2] ^= 0x01; bytes[bytes.Length / 3] ^= 0x80; return bytes; });
        var ex = LoadFails(path);
        var message = Tiny.Messages(ex);
        StringAssert.Contains(message, "'LinformerWeights' is corrupt: its SHA-256 is");
    }

    [TestMethod]
    public void FlippedBytesInTheRawZipFile()
    {
        var path = SavedModel();
        // The weights entry is the largest; damage its compressed data in the middle of the file.
        long offset = new FileInfo(path).Length / 2;
        var bytes = File.ReadAllBytes(path);
        for (int i = 0; i < 16; i++) bytes[offset + i] ^= 0xA5;
        File.WriteAllBytes(path, bytes);
        var ex = LoadFails(path);
        Assert.IsInstanceOfType<InvalidDataException>(Tiny.Chain(ex).Last());
    }

    [TestMethod]
    public void WeightsEntryCutShortOrMissing()
    {
        var path = SavedModel();
        // The entry ends with the SHA-256 of the weights, then the SHA-256 of the settings (32 bytes each).
        RewriteEntry(path, IsWeights, bytes => bytes[..(bytes.Length - 20)]);
        StringAssert.Contains(Tiny.Messages(LoadFails(path)), "'LinformerWeights' is truncated: expected the settings' 32-byte SHA-256 after the weights' one, found 12 bytes");
        RewriteEntry(path, IsWeights, bytes => bytes[..(bytes.Length - 40)]);
        StringAssert.Contains(Tiny.Messages(LoadFails(path)), "'LinformerWeights' is truncated: expected a 32-byte SHA-256 after the");
        RewriteEntry(path, IsWeights, bytes => bytes[..(bytes.Length - 40)]);
        StringAssert.Matches(Tiny.Messages(LoadFails(path)), new System.Text.RegularExpressions.Regex(@"'LinformerWeights' is truncated: expected \d+ bytes of weights, found \d+"));
        var missing = SavedModel("missing.zip");
        using (var zip = ZipFile.Open(missing, ZipArchiveMode.Update)) zip.Entries.Single(e => IsWeights(e.FullName)).Delete();
        StringAssert.Contains(Tiny.Messages(LoadFails(missing)), "has no 'LinformerWeights' entry");
    }

    [TestMethod]
    public void StoredSettingsThatDisagreeWithTheStoredWeights()
    {
        var path = SavedModel();
        // The settings JSON sits in Model.key's string table; change the feed-forward width (same length) so the
        // settings describe a network whose weights have other shapes.
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            bool changed = false;
            foreach (var entry in zip.Entries.ToList())
            {
                byte[] bytes;
                using (var s = entry.Open()) { var ms = new MemoryStream(); s.CopyTo(ms); bytes = ms.ToArray(); }
                foreach (var encoding in new Encoding[] { Encoding.UTF8, Encoding.Unicode })
                {
                    int at = bytes.AsSpan().IndexOf(encoding.GetBytes("\"FeedForwardSize\":16"));
                    if (at < 0) continue;
                    encoding.GetBytes("\"FeedForwardSize\":32").CopyTo(bytes, at);
                    var name = entry.FullName;
                    entry.Delete();
                    using (var w = zip.CreateEntry(name).Open()) w.Write(bytes);
                    changed = true;
                    break;
                }
                if (changed) break;
            }
            Assert.IsTrue(changed, "the settings JSON was found in the model");
        }
        var ex = LoadFails(path);
        var message = Tiny.Messages(ex);
        StringAssert.Contains(message, "do not match its stored settings");
        StringAssert.Contains(message, "LinformerWeights");
    }

    [TestMethod]
    public void EditedSettingsInModelKeyAreCaughtByTheirChecksum()
    {
        var path = SavedModel();
        // System.IO.Compression does not check an entry's CRC on read, so damage inside Model.key's compressed data can
        // decode to other settings. Gelu -> Relu keeps the length and builds the same weights: without the settings'
        // SHA-256 (format 1.3) this loads as a silently different model.
        bool changed = false;
        RewriteEntry(path, name => name.EndsWith("Model.key", StringComparison.Ordinal), bytes =>
        {
            var from = Encoding.Unicode.GetBytes("\"Activation\":\"Gelu\"");
            int at = bytes.AsSpan().IndexOf(from);
            if (at >= 0) { Encoding.Unicode.GetBytes("\"Activation\":\"Relu\"").CopyTo(bytes, at); changed = true; }
            return bytes;
        });
        Assert.IsTrue(changed, "the settings JSON was found in Model.key");
        StringAssert.Contains(Tiny.Messages(LoadFails(path)), "The Linformer model's settings (in 'Model.key') are corrupt: their SHA-256 is");
    }

    [TestMethod]
    public void ARandomZipAndAnotherTransformersModel()
    {
        var random = Path.Combine(folder, "random.zip");
        using (var zip = ZipFile.Open(random, ZipArchiveMode.Create))
        using (var w = new StreamWriter(zip.CreateEntry("readme.txt").Open())) w.Write("not a model");
        // Nothing of ours runs: ML.NET looks for its own entries and finds none (docs/hardening.md).
        var ex = LoadFails(random);
        Assert.AreEqual(typeof(InvalidOperationException), ex.GetType(), Tiny.Messages(ex));
        StringAssert.Contains(ex.Message, "Could not load legacy format model");
        Assert.IsNotNull(ex.InnerException, Tiny.Messages(ex));
        Assert.AreEqual(typeof(InvalidOperationException), ex.InnerException.GetType(), Tiny.Messages(ex));
        StringAssert.Contains(ex.InnerException.Message, "Repository doesn't contain entry DataLoaderModel/Model.key");

        // An ML.NET model of another transformer loads as that transformer: nothing of ours runs, and the caller's cast
        // (or use as a Linformer) is what fails. Checking the type is the caller's job.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Scalar { X = 1 }, new Scalar { X = 3 } });
        var other = Path.Combine(folder, "other.zip");
        ml.Model.Save(ml.Transforms.NormalizeMinMax("X").Fit(data), data.Schema, other);
        var loaded = new MLContext().Model.Load(other, out _);
        Assert.IsNotInstanceOfType<LinformerTransformer>(loaded);
        TestContext.WriteLine($"other.zip loads as {loaded.GetType().Name}");
    }

    public sealed class Scalar { public float X { get; set; } }

    [TestMethod]
    public void FailingSaveLeavesTheExistingModelFileByteForByte()
    {
        var ml = new MLContext(seed: 8);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, 1));
        var path = Path.Combine(folder, "keep.zip");
        var model = Tiny.Fit(ml, data, Tiny.Options(epochs: 0));
        ml.Model.SaveAtomically(model, data.Schema, path);
        var before = File.ReadAllBytes(path);
        Assert.AreEqual(typeof(LinformerTransformer), new MLContext().Model.Load(path, out _).GetType());
        model.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => ml.Model.SaveAtomically(model, data.Schema, path));
        CollectionAssert.AreEqual(before, File.ReadAllBytes(path), "the previous model survives a failed save");
        CollectionAssert.AreEqual(new[] { "keep.zip" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray(), "no temporary file is left");
        // Overwriting with a good model replaces it; the result loads.
        using var second = Tiny.Fit(ml, data, Tiny.Options(epochs: 1));
        ml.Model.SaveAtomically(second, data.Schema, path);
        using var reloaded = (LinformerTransformer)new MLContext().Model.Load(path, out _);
        Tiny.AssertBitIdentical(Tiny.Features(second, data), Tiny.Features(reloaded, data), "atomically saved model");
        StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => ml.Model.SaveAtomically(second, data.Schema, Path.Combine(folder, "no", "m.zip"))).Message, "does not exist");
    }

    // ------------------------------------------------------------ safetensors for PyTorchWeightsPath

    private static string Fixture => Path.Combine(TestPaths.SeedFixtures, "encoder-none-relu");

    public sealed class FloatRow { [VectorType(48 * 24)] public float[] Values { get; set; } = new float[48 * 24]; }

    private static LinformerEstimator.Options FixtureOptions(string weights) => new()
    {
        InputColumnName = "Values", OutputColumnName = "Encoded", SequenceLength = 48, ModelWidth = 24, ProjectedLength = 12, Heads = 3, Depth = 1,
        FeedForwardSize = 64, Activation = Activation.Relu, Sharing = ParameterSharing.None, Epochs = 0, PyTorchWeightsPath = weights,
    };

    private Exception FitFails(string weights)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new FloatRow() });
        Exception? caught = null;
        try { ml.Transforms.Linformer(FixtureOptions(weights)).Fit(data).Dispose(); }
        catch (Exception ex) { caught = ex; }
        Assert.IsNotNull(caught, $"Fit with '{Path.GetFileName(weights)}' must fail");
        TestContext.WriteLine($"{Path.GetFileName(weights)}: {Tiny.Messages(caught)}");
        Assert.IsInstanceOfType<InvalidDataException>(caught);
        StringAssert.Contains(caught.Message, Path.GetFileName(weights));
        return caught;
    }

    private string WithBytes(string name, Func<byte[], byte[]> change)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, change(File.ReadAllBytes(Path.Combine(Fixture, "weights.safetensors"))));
        return path;
    }

    /// <summary>Writes a safetensors file (F32 or I64 tensors).</summary>
    private string Write(string name, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var header = new Dictionary<string, object>();
        var data = new MemoryStream();
        foreach (var (key, t) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var bytes = t.cpu().contiguous().bytes.ToArray();
            header[key] = new { dtype = t.dtype == ScalarType.Int64 ? "I64" : "F32", shape = t.shape, data_offsets = new[] { data.Length, data.Length + bytes.Length } };
            data.Write(bytes);
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var path = Path.Combine(folder, name);
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        file.Write(data.ToArray());
        return path;
    }

    [TestMethod]
    public void SafetensorsWithAWrongHeader()
    {
        var huge = WithBytes("bad-length.safetensors", b => { BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)b.Length * 2); return b; });
        StringAssert.Contains(FitFails(huge).Message, "the header length");
        var json = WithBytes("bad-json.safetensors", b => { b[8] = (byte)'['; b[9] = (byte)'}'; return b; });
        StringAssert.Contains(FitFails(json).Message, "the header is not valid JSON");
        var tiny = WithBytes("too-short.safetensors", b => b[..5]);
        StringAssert.Contains(FitFails(tiny).Message, "8-byte header length");
        var cut = WithBytes("cut-data.safetensors", b => b[..(b.Length - 100)]);
        StringAssert.Contains(FitFails(cut).Message, "outside the data of");
    }

    [TestMethod]
    public void SafetensorsWithAWrongDtypeShapeOrAMissingTensor()
    {
        var state = SafeTensors.Read(Path.Combine(Fixture, "weights.safetensors"));
        try
        {
            var name = state.Keys.First(k => k.EndsWith("w_1.weight", StringComparison.Ordinal));
            var original = state[name];

            var asInt = new Dictionary<string, Tensor>(state) { [name] = original.to_type(ScalarType.Int64) };
            var message = FitFails(Write("wrong-dtype.safetensors", asInt)).Message;
            StringAssert.Contains(message, $"tensor '{name}' has dtype Int64; expected a floating-point tensor");

            var reshaped = new Dictionary<string, Tensor>(state) { [name] = original.narrow(0, 0, original.shape[0] - 1) };
            message = FitFails(Write("wrong-shape.safetensors", reshaped)).Message;
            StringAssert.Contains(message, $"tensor '{name}' has shape [{original.shape[0] - 1}, {original.shape[1]}]; the model built from the arguments expects [{original.shape[0]}, {original.shape[1]}]");

            var missing = new Dictionary<string, Tensor>(state);
            missing.Remove(name);
            message = FitFails(Write("missing.safetensors", missing)).Message;
            StringAssert.Contains(message, $"missing tensor '{name}' (expected shape [{original.shape[0]}, {original.shape[1]}])");

            var extra = new Dictionary<string, Tensor>(state) { ["stray.weight"] = original };
            message = FitFails(Write("extra.safetensors", extra)).Message;
            StringAssert.Contains(message, "1 tensor(s) do not belong to the model built from the arguments: stray.weight");
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }
}
