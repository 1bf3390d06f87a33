using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// Model zips written by earlier versions of the library (Fixtures/models, README there) still load and reproduce
/// the outputs recorded by the model that wrote them.
/// </summary>
[TestClass]
public sealed class ModelFormatCompatibilityTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string Models => Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "Fixtures", "models");

    public sealed class Row
    {
        [VectorType(16)] public int[] Tokens { get; set; } = new int[16];
    }

    private sealed record Recorded(string WrittenBy, string InputColumn, string OutputColumn, int[][] Tokens, float[][] Features,
        Dictionary<string, string> EncoderWeightsSha256);

    /// <summary>
    /// Loads the zip in a new <see cref="MLContext"/> and compares with what the writing model recorded: every encoder
    /// tensor bit for bit (SHA-256 of its bytes) and the features of the recorded inputs bit for bit. The encoder's
    /// computation has not changed since these files were written, so no tolerance is needed; a change of the
    /// arithmetic (or another CPU's float32 kernels) shows here first.
    /// </summary>
    [TestMethod]
    [DataRow("model-1.1", 0x00010001u, 0x00010001u)]
    [DataRow("model-1.2", 0x00010002u, 0x00010001u)]
    [DataRow("model-1.3", 0x00010003u, 0x00010001u)]
    public void OldModelFileLoadsAndReproducesItsRecordedOutputs(string name, uint versionWritten, uint versionReadable)
    {
        var zip = Path.Combine(Models, name + ".zip");
        var recorded = JsonSerializer.Deserialize<Recorded>(File.ReadAllText(Path.Combine(Models, name + ".json")),
            new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        TestContext.WriteLine($"{name}: written by {recorded.WrittenBy}");

        // The file is what its name says: the component header's format versions.
        var header = Header(zip);
        Assert.AreEqual("LINFORMR", System.Text.Encoding.ASCII.GetString(header, 64, 8));
        Assert.AreEqual(versionWritten, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(72)), "version written");
        Assert.AreEqual(versionReadable, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(76)), "version readable");

        var ml = new MLContext(seed: 1);
        using var model = (LinformerTransformer)ml.Model.Load(zip, out var schema);
        Assert.AreEqual(recorded.InputColumn, model.InputColumnName);
        Assert.AreEqual(recorded.OutputColumn, model.OutputColumnName);
        Assert.IsNull(model.ScoreColumnName, "the compatibility models have no supervised head");

        var weights = model.Encoder.state_dict().ToDictionary(kv => kv.Key, kv => Convert.ToHexString(SHA256.HashData(kv.Value.cpu().contiguous().bytes)));
        CollectionAssert.AreEquivalent(recorded.EncoderWeightsSha256.Keys.ToList(), weights.Keys.ToList(), "encoder tensor names");
        foreach (var (tensor, hash) in recorded.EncoderWeightsSha256)
            Assert.AreEqual(hash, weights[tensor], $"encoder tensor '{tensor}' (SHA-256 of its bytes)");

        var inputs = ml.Data.LoadFromEnumerable(recorded.Tokens.Select(t => new Row { Tokens = t }));
        Assert.AreEqual(inputs.Schema[recorded.InputColumn].Type, schema[recorded.InputColumn].Type, "the saved input schema");
        var features = model.Transform(inputs).GetColumn<float[]>(recorded.OutputColumn).ToList();
        Hardening.Tiny.AssertBitIdentical(recorded.Features, features, $"{name} features");
        TestContext.WriteLine($"{name}: {features.Count} rows × {features[0].Length} features identical to the recorded ones; {weights.Count} encoder tensors identical");
    }

    /// <summary>The first 80 bytes of ML.NET's ModelHeader: the model signature at byte 64, then the written and readable versions.</summary>
    /// <summary>The Linformer component header of a saved model zip (signature at 64, versions written and readable at 72 and 76).</summary>
    internal static byte[] Header(string zip)
    {
        using var archive = ZipFile.OpenRead(zip);
        using var key = archive.GetEntry("TransformerChain/Model.key")!.Open();
        var header = new byte[80];
        key.ReadExactly(header);
        return header;
    }

    private static uint VersionWritten(string zip) => BinaryPrimitives.ReadUInt32LittleEndian(Header(zip).AsSpan(72));

    /// <summary>The format versions a saved model zip is stamped with: the one written and the oldest reader's.</summary>
    internal static (uint Written, uint Readable) Versions(string zip)
    {
        var header = Header(zip);
        return (BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(72)), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(76)));
    }

    /// <summary>
    /// Writes the compatibility model of the format this library writes today, with its recorded inputs, outputs and
    /// encoder weights, into the folder named by <c>LINFORMER_WRITE_MODEL_FIXTURE</c> (the recipe of
    /// Fixtures/models/README.md). Inconclusive without the variable; run it when the format changes.
    /// </summary>
    [TestMethod]
    public void WriteTodaysCompatibilityModel()
    {
        var folder = Environment.GetEnvironmentVariable("LINFORMER_WRITE_MODEL_FIXTURE");
        if (folder is null)
            Assert.Inconclusive("Writes a fixture: set LINFORMER_WRITE_MODEL_FIXTURE=<folder> to write today's compatibility model there.");
        const int n = 16, vocabulary = 8;
        static Row[] Rows(int count, int seed)
        {
            var random = new Random(seed);
            return Enumerable.Range(0, count).Select(_ => new Row { Tokens = Enumerable.Range(0, n).Select(_ => random.Next(vocabulary)).ToArray() }).ToArray();
        }
        var ml = new MLContext(seed: 11);
        var train = ml.Data.LoadFromEnumerable(Rows(24, 1));
        using var model = ml.Transforms.Linformer(new LinformerEstimator.Options
        {
            InputColumnName = "Tokens", OutputColumnName = "Features", VocabularySize = vocabulary,
            ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 2, FeedForwardSize = 16, Sharing = ParameterSharing.KeyValue,
            Epochs = 2, BatchSize = 4,
        }).Fit(train);
        var saved = Path.Combine(folder, "model.zip");
        ml.Model.Save(model, train.Schema, saved);
        uint version = VersionWritten(saved);
        var name = $"model-{version >> 16}.{version & 0xFFFF}";
        File.Move(saved, Path.Combine(folder, name + ".zip"), overwrite: true);
        var inputs = Rows(6, 2);
        var features = model.Transform(ml.Data.LoadFromEnumerable(inputs)).GetColumn<float[]>("Features").ToArray();
        var weights = model.Encoder.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(kv => kv.Key, kv => Convert.ToHexString(SHA256.HashData(kv.Value.cpu().contiguous().bytes)));
        File.WriteAllText(Path.Combine(folder, name + ".json"), JsonSerializer.Serialize(new
        {
            writtenBy = Environment.GetEnvironmentVariable("LINFORMER_WRITTEN_BY") ?? $"Linformer.MLNet (model format {name[6..]})",
            inputColumn = "Tokens", outputColumn = "Features",
            tokens = inputs.Select(r => r.Tokens).ToArray(),
            features,
            encoderWeightsSha256 = weights,
        }));
        TestContext.WriteLine($"wrote {name}.zip and {name}.json to {folder}");
    }
}
