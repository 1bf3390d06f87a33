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
    public void OldModelFileLoadsAndReproducesItsRecordedOutputs(string name, uint versionWritten, uint versionReadable)
    {
        var zip = Path.Combine(Models, name + ".zip");
        var recorded = JsonSerializer.Deserialize<Recorded>(File.ReadAllText(Path.Combine(Models, name + ".json")),
            new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        TestContext.WriteLine($"{name}: written by {recorded.WrittenBy}");

        // The file is what its name says: the component header's format versions (ML.NET's ModelHeader: the model
        // signature at byte 64, then the written and readable versions).
        using (var archive = ZipFile.OpenRead(zip))
        {
            using var key = archive.GetEntry("TransformerChain/Model.key")!.Open();
            var header = new byte[80];
            key.ReadExactly(header);
            Assert.AreEqual("LINFORMR", System.Text.Encoding.ASCII.GetString(header, 64, 8));
            Assert.AreEqual(versionWritten, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(72)), "version written");
            Assert.AreEqual(versionReadable, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(76)), "version readable");
        }

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
}
