using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.InteropServices;
using Linformer.MLNet.Interop;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// A third-party transformer in an ordinary ML.NET model zip: saved with <c>mlContext.Model.Save</c>, loaded with
/// <c>mlContext.Model.Load</c> in this process and in a fresh one, with a new MLContext and no registration call.
/// </summary>
[TestClass]
public sealed class ModelPersistenceTests
{
    private const string InputColumn = "Value";
    private const string OutputColumn = "Shifted";
    private const float Constant = 0.1f; // not exactly representable: a lossy round trip would show

    // Includes values where float addition rounds, a subnormal, a signed zero and the extremes.
    private static readonly float[] Inputs = [1.5f, -2.25f, 0f, -0f, 3.3333333f, 1e-40f, float.MaxValue, -7e20f, 0.2f];

    public TestContext TestContext { get; set; } = null!;

    private string _directory = null!;

    [TestInitialize]
    public void CreateDirectory()
    {
        _directory = Path.Combine(Path.GetTempPath(), "linformer-persistence-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
    }

    [TestCleanup]
    public void DeleteDirectory()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    // ------------------------------------------------------------------ weaving

    [TestMethod]
    public void TestAssembly_CarriesExactlyOneWovenLoadableClass_ForTheMarker()
    {
        var woven = WovenLoadableClasses(typeof(AddConstantTransformer).Assembly)
            .Where(w => w.LoadNames.Contains(AddConstantTransformer.LoaderSignature))
            .ToList();

        Assert.HasCount(1, woven, "Weaving must add the LoadableClass once, however often the build ran.");
        Assert.AreEqual(typeof(AddConstantTransformer), woven[0].InstanceType);
        Assert.IsNull(woven[0].ArgumentType);
        Assert.AreEqual("Microsoft.ML.SignatureLoadModel", woven[0].SignatureType?.FullName);
        Assert.AreEqual("Add constant (test)", woven[0].UserName);
    }

    [TestMethod]
    public void EveryMarker_InLibraryAndTests_HasItsWovenLoadableClass()
    {
        foreach (var assembly in new[] { typeof(ModelContextBridge).Assembly, typeof(AddConstantTransformer).Assembly })
        {
            var woven = WovenLoadableClasses(assembly).ToList();
            foreach (var marker in assembly.GetCustomAttributes<MLNetLoadableModelAttribute>())
                Assert.IsTrue(woven.Any(w => w.InstanceType == marker.InstanceType && w.LoadNames.Contains(marker.LoaderSignature)),
                    $"{assembly.GetName().Name}: [MLNetLoadableModel({marker.InstanceType.Name}, '{marker.LoaderSignature}')] was not woven; " +
                    "set <LinformerWeaveLoadableClasses>true</LinformerWeaveLoadableClasses> in its project.");
        }
    }

    [TestMethod]
    public void Weaver_RunAgainOnAWovenAssembly_ChangesNothing()
    {
        var copy = Path.Combine(_directory, Path.GetFileName(typeof(AddConstantTransformer).Assembly.Location));
        File.Copy(typeof(AddConstantTransformer).Assembly.Location, copy);
        var before = File.ReadAllBytes(copy);

        var run = RunDotnet(ToolPath("Linformer.Tests.Weaver"), copy, "--references", WriteReferencesFile());

        Assert.AreEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardOutput, "already present", run.ToString());
        CollectionAssert.AreEqual(before, File.ReadAllBytes(copy), "An assembly that needs nothing must not be rewritten.");
    }

    [TestMethod]
    public void Weaver_MissingAssembly_FailsWithAnMSBuildError()
    {
        var run = RunDotnet(ToolPath("Linformer.Tests.Weaver"), Path.Combine(_directory, "missing.dll"), "--references", WriteReferencesFile());

        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardOutput, "error LNW001", run.ToString());
    }

    /// <summary>The weaver's references file: here every assembly beside the tests (the build passes the compile references).</summary>
    private string WriteReferencesFile()
    {
        var path = Path.Combine(_directory, "references.txt");
        File.WriteAllLines(path, Directory.GetFiles(AppContext.BaseDirectory, "*.dll"));
        return path;
    }

    // ------------------------------------------------------------------ round trips

    [TestMethod]
    public void SaveThenLoad_NewMLContextSameProcess_GivesIdenticalValues()
    {
        var saver = new MLContext(seed: 1);
        var data = LoadInputs(saver);
        var original = new AddConstantTransformer(InputColumn, OutputColumn, Constant);
        var expected = Compute(saver, original, data);
        var path = Path.Combine(_directory, "model.zip");
        saver.Model.Save(original, data.Schema, path);

        var loader = new MLContext(seed: 2);
        var loaded = loader.Model.Load(path, out var inputSchema);

        Assert.IsInstanceOfType<AddConstantTransformer>(loaded);
        Assert.AreEqual(Constant, ((AddConstantTransformer)loaded).Constant);
        Assert.AreEqual(NumberDataViewType.Single, inputSchema[InputColumn].Type);
        var actual = Compute(loader, loaded, LoadInputs(loader));
        AssertBitsEqual(expected.Transform, actual.Transform, "Transform");
        AssertBitsEqual(expected.Predict, actual.Predict, "PredictionEngine");
        AssertBitsEqual(Inputs.Select(v => v + Constant).ToArray(), expected.Transform, "the transformer's own arithmetic");
    }

    [TestMethod]
    public void SaveThenLoad_InsideATransformerChainWithMLNetTransforms_GivesIdenticalValues()
    {
        var saver = new MLContext(seed: 1);
        var data = LoadInputs(saver);
        var copy = saver.Transforms.CopyColumns("Copy", InputColumn).Fit(data);
        var chain = new TransformerChain<ITransformer>(copy, new AddConstantTransformer("Copy", OutputColumn, Constant));
        var expected = Compute(saver, chain, data);
        var path = Path.Combine(_directory, "chain.zip");
        saver.Model.Save(chain, data.Schema, path);

        var loader = new MLContext(seed: 2);
        var loaded = loader.Model.Load(path, out _);

        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(loaded);
        Assert.IsInstanceOfType<AddConstantTransformer>(((TransformerChain<ITransformer>)loaded).LastTransformer);
        AssertBitsEqual(expected.Transform, Compute(loader, loaded, LoadInputs(loader)).Transform, "Transform");
    }

    [TestMethod]
    public void SaveThenLoad_InANewProcess_GivesIdenticalValues()
    {
        var saver = new MLContext(seed: 1);
        var data = LoadInputs(saver);
        var original = new AddConstantTransformer(InputColumn, OutputColumn, Constant);
        var expected = Compute(saver, original, data);
        var path = Path.Combine(_directory, "model.zip");
        saver.Model.Save(original, data.Schema, path);

        var run = RunModelLoadHost(path);

        Assert.AreEqual(0, run.ExitCode, run.ToString());
        var lines = run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        CollectionAssert.Contains(lines, "type " + typeof(AddConstantTransformer).FullName, run.ToString());
        AssertBitsEqual(expected.Transform, Parse(lines, "transform "), "Transform in the new process");
        AssertBitsEqual(expected.Predict, Parse(lines, "predict "), "PredictionEngine in the new process");
    }

    // ------------------------------------------------------------------ versions

    [TestMethod]
    public void Load_ModelWrittenInANewerFormat_ThrowsFormatExceptionNamingTheVersions()
    {
        var newer = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            versionWritten: 0x00010003, versionReadable: 0x00010002, versionWeCanReadBack: 0x00010001, AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: newer));

        var ex = LoadAndCatch(path);

        var format = Innermost(ex);
        Assert.IsInstanceOfType<FormatException>(format, ex.ToString());
        StringAssert.Contains(format.Message, "newer");
        StringAssert.Contains(format.Message, "0x00010003");
        StringAssert.Contains(format.Message, "0x00010002");
        StringAssert.Contains(format.Message, "0x00010001");
        StringAssert.Contains(format.Message, AddConstantTransformer.LoaderSignature);
        TestContext.WriteLine($"{ex.GetType().FullName} > {format.GetType().FullName}: {format.Message}");
    }

    [TestMethod]
    public void Load_ModelWrittenInANewerButReadableFormat_Loads()
    {
        // A newer writer that declares the current format still readable (VersionReadable) must load.
        var newerCompatible = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            versionWritten: 0x00010002, versionReadable: AddConstantTransformer.FormatVersion, versionWeCanReadBack: 0x00010001,
            AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: newerCompatible));

        var loaded = new MLContext().Model.Load(path, out _);

        Assert.AreEqual(Constant, ((AddConstantTransformer)loaded).Constant);
    }

    [TestMethod]
    public void Load_ModelWrittenInAFormatTooOld_ThrowsFormatExceptionNamingTheVersions()
    {
        var older = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            versionWritten: 0x00010000, versionReadable: 0x00010000, versionWeCanReadBack: 0x00010000, AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: older));

        var format = Innermost(LoadAndCatch(path));

        Assert.IsInstanceOfType<FormatException>(format);
        StringAssert.Contains(format.Message, "older");
        StringAssert.Contains(format.Message, "0x00010000");
    }

    [TestMethod]
    public void Load_EntryWithAnotherFormatSignature_ThrowsFormatException()
    {
        var other = ModelVersionInfo.ForType(typeof(AddConstantTransformer), "OTHERFMT",
            AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion,
            AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: other));

        var format = Innermost(LoadAndCatch(path));

        Assert.IsInstanceOfType<FormatException>(format);
        StringAssert.Contains(format.Message, "'OTHERFMT'");
        StringAssert.Contains(format.Message, "'ADDCONST'");
    }

    [TestMethod]
    public void Load_ModelWhoseLoaderSignatureIsRegisteredNowhere_Throws()
    {
        // What a model looks like to a process whose assembly lacks the woven LoadableClass.
        var unknown = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion,
            "NoSuchLinformerLoader");
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: unknown));

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<FormatException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ModelWrittenInANewerFormat_FailsTheSameWayInANewProcess()
    {
        var newer = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            0x00010003, 0x00010002, 0x00010001, AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: newer));

        var run = RunModelLoadHost(path);

        Assert.AreEqual(2, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardError, "System.FormatException", run.ToString());
        StringAssert.Contains(run.StandardError, "0x00010002", run.ToString());
    }

    // ------------------------------------------------------------------ damaged files

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
        var path = Path.Combine(_directory, "not-a-model.zip");
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

    // ------------------------------------------------------------------ argument checks

    [TestMethod]
    [DataRow("SEVEN77", DisplayName = "7 characters")]
    [DataRow("NINECHARS", DisplayName = "9 characters")]
    [DataRow("ÄÖÜ\u0100ABCD", DisplayName = "a character above U+00FF")]
    public void ModelVersionInfo_RejectsAModelSignatureThatIsNotEight8BitCharacters(string signature)
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo(signature, 1, 1, 1, "Loader", "Assembly"));
        Assert.AreEqual("modelSignature", ex.ParamName);
        StringAssert.Contains(ex.Message, signature);
    }

    [TestMethod]
    public void ModelVersionInfo_RejectsALoaderSignatureLongerThan24Characters()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 1, 1, new string('L', 25), "Assembly"));
        Assert.AreEqual("loaderSignature", ex.ParamName);
        StringAssert.Contains(ex.Message, "24");
    }

    [TestMethod]
    public void ModelVersionInfo_RejectsInconsistentVersions()
    {
        Assert.AreEqual("versionReadable",
            Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 2, 1, "Loader", "Assembly")).ParamName);
        Assert.AreEqual("versionWeCanReadBack",
            Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 1, 2, "Loader", "Assembly")).ParamName);
    }

    [TestMethod]
    public void ModelVersionInfo_ForType_StoresTheSimpleAssemblyName()
        => Assert.AreEqual("Linformer.MLNet.Tests", AddConstantTransformer.Format.LoaderAssemblyName);

    [TestMethod]
    public void Bridge_LoadMembers_RejectAnObjectThatIsNoModelLoadContext()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ModelContextBridge.GetReader(new object()));
        StringAssert.Contains(ex.Message, "ModelLoadContext");
        Assert.IsFalse(ModelContextBridge.IsModelLoadContext("not a context"));
    }

    // ------------------------------------------------------------------ helpers

    private sealed class FloatRow
    {
        public float Value { get; set; }
    }

    private sealed class ShiftedRow
    {
        [ColumnName(OutputColumn)]
        public float Shifted { get; set; }
    }

    private static IDataView LoadInputs(MLContext mlContext)
        => mlContext.Data.LoadFromEnumerable(Inputs.Select(v => new FloatRow { Value = v }).ToList());

    private static (float[] Transform, float[] Predict) Compute(MLContext mlContext, ITransformer model, IDataView data)
    {
        var transformed = model.Transform(data).GetColumn<float>(OutputColumn).ToArray();
        // Not disposed: disposing a default PredictionEngine disposes the transformer it was made from.
        var engine = mlContext.Model.CreatePredictionEngine<FloatRow, ShiftedRow>(model, ignoreMissingColumns: true);
        var predicted = Inputs.Select(v => engine.Predict(new FloatRow { Value = v }).Shifted).ToArray();
        return (transformed, predicted);
    }

    private string Save(ITransformer model)
    {
        var mlContext = new MLContext(seed: 1);
        var path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".zip");
        mlContext.Model.Save(model, LoadInputs(mlContext).Schema, path);
        return path;
    }

    private static Exception LoadAndCatch(string path)
    {
        try
        {
            new MLContext().Model.Load(path, out _);
        }
        catch (Exception ex)
        {
            return ex;
        }
        Assert.Fail($"Loading {Path.GetFileName(path)} should have failed.");
        throw new UnreachableException();
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    private static string Describe(Exception ex)
    {
        var chain = new List<string>();
        for (Exception? e = ex; e is not null; e = e.InnerException) chain.Add($"{e.GetType().FullName}: {e.Message}");
        return string.Join(" --> ", chain);
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

    private static void AssertBitsEqual(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        for (var i = 0; i < expected.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: row {i} (input {Inputs[i]:R}) expected {expected[i]:R}, got {actual[i]:R}.");
    }

    private static float[] Parse(string[] lines, string prefix)
        => lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => BitConverter.Int32BitsToSingle(int.Parse(l[prefix.Length..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
            .ToArray();

    private static IEnumerable<(Type? InstanceType, Type? ArgumentType, Type? SignatureType, string? UserName, string[] LoadNames)> WovenLoadableClasses(Assembly assembly)
        // CustomAttributeData reads the attribute without instantiating ML.NET's internal type.
        => assembly.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "Microsoft.ML.LoadableClassAttribute" && a.ConstructorArguments.Count == 5)
            .Select(a => (
                a.ConstructorArguments[0].Value as Type,
                a.ConstructorArguments[1].Value as Type,
                a.ConstructorArguments[2].Value as Type,
                a.ConstructorArguments[3].Value as string,
                ((IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[4].Value!).Select(v => (string)v.Value!).ToArray()));

    // ------------------------------------------------------------------ processes

    private sealed record ProcessRun(int ExitCode, string StandardOutput, string StandardError)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
    }

    private ProcessRun RunModelLoadHost(string modelPath)
    {
        var arguments = new List<string> { modelPath, AppContext.BaseDirectory, InputColumn, OutputColumn };
        arguments.AddRange(Inputs.Select(v => BitConverter.SingleToInt32Bits(v).ToString("X8", CultureInfo.InvariantCulture)));
        return RunDotnet(ToolPath("Linformer.Tests.ModelLoadHost"), [.. arguments]);
    }

    /// <summary>A build output the test project recorded (relative to the test assembly) in its assembly metadata.</summary>
    private static string ToolPath(string key)
    {
        var relative = typeof(ModelPersistenceTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .SingleOrDefault(a => a.Key == key)?.Value
            ?? throw new InvalidOperationException($"The test assembly has no '{key}' metadata; build it through Linformer.MLNet.Tests.csproj.");
        var path = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, relative));
        if (!File.Exists(path)) throw new FileNotFoundException($"{key} was not built: {path}", path);
        return path;
    }

    private static ProcessRun RunDotnet(string dll, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(dll)} did not finish within 2 minutes.");
        }
        return new ProcessRun(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The dotnet host running these tests (falls back to the one beside the runtime, then PATH).</summary>
    private static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk)) return fromSdk;
        var processPath = Environment.ProcessPath;
        if (processPath is not null && Path.GetFileNameWithoutExtension(processPath) == "dotnet") return processPath;
        var executable = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "dotnet.exe" : "dotnet";
        // The runtime lives in <dotnet root>/shared/Microsoft.NETCore.App/<version>/.
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var besideRuntime = Path.Combine(root, executable);
        return File.Exists(besideRuntime) ? besideRuntime : executable;
    }
}
