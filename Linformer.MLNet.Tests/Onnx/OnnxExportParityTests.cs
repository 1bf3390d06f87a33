using Linformer.MLNet.Cli;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Onnx;
using Linformer.MLNet.Persistence;
using Linformer.MLNet.Tests.Hardening;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Onnx;

/// <summary>
/// ONNX Runtime (fp32, every graph optimisation on) against TorchSharp on the same weights and inputs, for every input
/// kind, sharing mode, projection method, mask, k reduction, head width, output map, pooling and head kind, and for
/// the recorded linformer-pytorch fixtures imported then exported. docs/onnx.md states the bound.
/// </summary>
[TestClass]
public sealed class OnnxExportParityTests
{
    /// <summary>Max |ONNX Runtime − TorchSharp| over every output value (docs/onnx.md).</summary>
    public const double Bound = 1e-5;

    public TestContext TestContext { get; set; } = null!;

    private const int N = 8;
    private const int Batch = 3;

    /// <summary>name, options, float input channels (0 = tokens), output kind, head.</summary>
    public static IEnumerable<object[]> Cases()
    {
        LinformerEncoderOptions Tokens(Func<LinformerEncoderOptions, LinformerEncoderOptions> with) => with(new LinformerEncoderOptions
        {
            SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2, FeedForwardSize = 16, VocabularySize = 11,
            Dropout = 0, FeedForwardDropout = 0,
        });
        LinformerEncoderOptions Floats(Func<LinformerEncoderOptions, LinformerEncoderOptions> with) => with(new LinformerEncoderOptions
        {
            SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2, FeedForwardSize = 16,
            PositionEmbedding = PositionEmbedding.Sinusoidal, Dropout = 0, FeedForwardDropout = 0,
        });
        yield return new object[] { "tokens layerwise learnable mean", Tokens(o => o), 0, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "tokens emb_dim fixed first", Tokens(o => o with { EmbeddingSize = 6, ProjectionMethod = ProjectionMethod.Fixed }), 0, LinformerOutputKind.FirstPosition, (int)HeadOutput.None };
        yield return new object[] { "floats input map none sequence", Floats(o => o with { Sharing = ParameterSharing.None, Depth = 2 }), 3, LinformerOutputKind.Sequence, (int)HeadOutput.None };
        yield return new object[] { "floats headwise k-reduction relu", Floats(o => o with { Sharing = ParameterSharing.Headwise, Depth = 3, ProjectedLengthReductionPerLayer = 1, Activation = Activation.Relu }), 8, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "floats kv convolution k-reduction", Floats(o => o with { Sharing = ParameterSharing.KeyValue, ProjectionMethod = ProjectionMethod.Convolution, Depth = 2, ProjectedLengthReductionPerLayer = 2 }), 8, LinformerOutputKind.Sequence, (int)HeadOutput.None };
        yield return new object[] { "floats none convolution", Floats(o => o with { Sharing = ParameterSharing.None, ProjectionMethod = ProjectionMethod.Convolution }), 8, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "floats none fixed pre-norm", Floats(o => o with { Sharing = ParameterSharing.None, ProjectionMethod = ProjectionMethod.Fixed, NormPlacement = NormPlacement.PreNorm }), 8, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "tokens full attention learned positions", Tokens(o => o with { FullAttention = true, PositionEmbedding = PositionEmbedding.Learned, Depth = 2 }), 0, LinformerOutputKind.Sequence, (int)HeadOutput.None };
        yield return new object[] { "floats full attention pre-norm no position", Floats(o => o with { FullAttention = true, NormPlacement = NormPlacement.PreNorm, PositionEmbedding = PositionEmbedding.None }), 8, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "tokens head width two-step output no ff", Tokens(o => o with { HeadWidth = 3, Heads = 3, OutputIntermediateSize = 5, IncludeFeedForward = false }), 0, LinformerOutputKind.MeanPooled, (int)HeadOutput.None };
        yield return new object[] { "tokens classification probabilities", Tokens(o => o), 0, LinformerOutputKind.MeanPooled, (int)HeadOutput.Probabilities };
        yield return new object[] { "floats binary log-odds", Floats(o => o), 8, LinformerOutputKind.MeanPooled, (int)HeadOutput.LogOddsAndProbability };
        yield return new object[] { "floats regression", Floats(o => o with { Sharing = ParameterSharing.Headwise }), 4, LinformerOutputKind.FirstPosition, (int)HeadOutput.Value };
    }

    public static string CaseName(System.Reflection.MethodInfo _, object[] data) => (string)data[0];

    [TestMethod]
    [DynamicData(nameof(Cases), DynamicDataDisplayName = nameof(CaseName))]
    public void OnnxRuntimeMatchesTorchSharp(string name, LinformerEncoderOptions options, int inputChannels, LinformerOutputKind kind, int head)
    {
        var headOutput = (HeadOutput)head;
        var spec = new NetworkSpec
        {
            Encoder = options,
            InputChannels = options.UsesTokens ? 0 : inputChannels,
            Head = headOutput switch { HeadOutput.None => HeadKind.None, HeadOutput.Value => HeadKind.Regression, _ => HeadKind.Classification },
            Classes = headOutput == HeadOutput.LogOddsAndProbability ? 2 : 3,
        };
        torch.manual_seed(7);
        using var network = new LinformerNetwork(spec);
        Perturb(network);
        network.eval();
        var (ids, values, mask) = Inputs(spec, N, seed: 11);

        var (features, headValues) = TorchSharpOutputs(network, ids, values, mask, N, kind, headOutput);
        var model = LinformerOnnxExporter.Export(network, kind, headOutput);
        var (onnxFeatures, onnxHead) = Run(model, spec, ids, values, mask, N);

        double diff = MaxAbs(features, onnxFeatures);
        if (headValues is not null) diff = Math.Max(diff, MaxAbs(headValues, onnxHead!));
        else Assert.IsNull(onnxHead, $"{name}: the graph has a head output although none was asked for");
        TestContext.WriteLine($"{name}: max |ORT - TorchSharp| = {diff:E3}");
        Assert.IsLessThanOrEqualTo(Bound, diff, $"{name}: max |ORT - TorchSharp| = {diff:E3}");
    }

    [TestMethod]
    [DynamicData(nameof(FixtureCases))]
    public void RecordedPyTorchFixtureImportedThenExportedMatches(string caseName)
    {
        using var reference = PyTorchReferenceCase.Load(Path.Combine(TestPaths.SeedFixtures, caseName));
        var options = reference.Encoder.Options;
        var spec = new NetworkSpec { Encoder = options, InputChannels = options.UsesTokens ? 0 : options.ModelWidth };
        var network = new LinformerNetwork(spec, reference.Encoder);   // the case disposes the encoder
        network.eval();
        int batch = (int)reference.Input.shape[0], n = (int)reference.Input.shape[1];
        long[]? ids = options.UsesTokens ? reference.Input.to_type(ScalarType.Int64).data<long>().ToArray() : null;
        float[]? values = options.UsesTokens ? null : reference.Input.to_type(ScalarType.Float32).data<float>().ToArray();
        bool[] mask = reference.InputMask?.data<bool>().ToArray() ?? Enumerable.Repeat(true, batch * n).ToArray();

        var model = LinformerOnnxExporter.Export(network, LinformerOutputKind.Sequence, HeadOutput.None, length: n);
        var (onnx, _) = Run(model, spec, ids, values, mask, n, batch);
        using var scope = NewDisposeScope();
        var ours = reference.Run().flatten().data<float>().ToArray();
        var recorded = reference.ExpectedOutput.flatten().data<float>().ToArray();
        double diff = MaxAbs(ours, onnx), recordedDiff = MaxAbs(recorded, onnx);
        TestContext.WriteLine($"{caseName}: max |ORT - TorchSharp| = {diff:E3}, max |ORT - linformer-pytorch| = {recordedDiff:E3}");
        Assert.IsLessThanOrEqualTo(Bound, diff, $"{caseName}: max |ORT - TorchSharp| = {diff:E3}");
        Assert.IsLessThanOrEqualTo(Bound, recordedDiff, $"{caseName}: max |ORT - linformer-pytorch| = {recordedDiff:E3}");
    }

    public static IEnumerable<object[]> FixtureCases => TestPaths.SeedCaseNames();

    [TestMethod]
    public void ExportToOnnxOfAFittedTransformerGivesItsColumns()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(12, seed: 3));
        var options = Tiny.Options();
        options.ScoreColumnName = "Score";   // the Boolean label's log-odds, with Probability beside it
        using var transformer = Tiny.Fit(ml, data, options);
        using var stream = new MemoryStream();
        transformer.ExportToOnnx(stream);

        var scored = transformer.Transform(data);
        var features = scored.GetColumn<float[]>("Features").ToList();
        var scores = scored.GetColumn<float>(transformer.ScoreColumnName!).ToList();
        var probabilities = scored.GetColumn<float>(transformer.ProbabilityColumnName!).ToList();
        var rows = Tiny.Rows(12, seed: 3).ToList();

        using var session = new InferenceSession(stream.ToArray(), AllOptimizations());
        var ids = new DenseTensor<long>(rows.SelectMany(r => r.Tokens.Select(t => (long)t)).ToArray(), new[] { rows.Count, Tiny.N });
        var mask = new DenseTensor<bool>(Enumerable.Repeat(true, rows.Count * Tiny.N).ToArray(), new[] { rows.Count, Tiny.N });
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor(LinformerOnnxExporter.InputName, ids),
            NamedOnnxValue.CreateFromTensor(LinformerOnnxExporter.MaskName, mask),
        });
        var onnxFeatures = results.Single(r => r.Name == LinformerOnnxExporter.FeaturesName).AsTensor<float>().ToArray();
        var onnxHead = results.Single(r => r.Name == LinformerOnnxExporter.HeadName).AsTensor<float>().ToArray();

        double diff = MaxAbs(features.SelectMany(f => f).ToArray(), onnxFeatures);
        for (int i = 0; i < rows.Count; i++)
        {
            diff = Math.Max(diff, Math.Abs(scores[i] - onnxHead[2 * i]));
            diff = Math.Max(diff, Math.Abs(probabilities[i] - onnxHead[2 * i + 1]));
        }
        TestContext.WriteLine($"fitted transformer: max |ORT - Transform| = {diff:E3}");
        Assert.IsLessThanOrEqualTo(Bound, diff, $"max |ORT - Transform| = {diff:E3}");
    }

    [TestMethod]
    public void ExportToOnnxWritesAFileAndRefusesADisposedTransformer()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Tiny.Rows(8, seed: 3));
        var transformer = Tiny.Fit(ml, data, Tiny.Options(label: false));
        string path = Tiny.TempPath(".onnx");
        try
        {
            transformer.ExportToOnnx(path);
            using var session = new InferenceSession(path, AllOptimizations());
            CollectionAssert.AreEqual(new[] { LinformerOnnxExporter.InputName, LinformerOnnxExporter.MaskName }, session.InputMetadata.Keys.ToArray());
            CollectionAssert.AreEqual(new[] { LinformerOnnxExporter.FeaturesName }, session.OutputMetadata.Keys.ToArray());
            CollectionAssert.AreEqual(new[] { -1, Tiny.N }, session.InputMetadata[LinformerOnnxExporter.InputName].Dimensions);
            CollectionAssert.AreEqual(new[] { -1, transformer.OutputSize }, session.OutputMetadata[LinformerOnnxExporter.FeaturesName].Dimensions);
        }
        finally { File.Delete(path); }
        transformer.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => transformer.ExportToOnnx(new MemoryStream()));
    }

    internal static SessionOptions AllOptimizations() => new() { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };

    /// <summary>Moves every parameter away from its initial value (LayerNorm's ones and zeros included), so swapped weights show.</summary>
    internal static void Perturb(LinformerNetwork network)
    {
        using var noGrad = no_grad();
        using var scale = 0.2.ToScalar();
        foreach (var p in network.parameters()) p.add_(randn_like(p).mul_(scale));
    }

    /// <summary>Random ids or values and a mask: row 0 whole, row 1 with a padded tail, row 2 (of 3) wholly padded.</summary>
    internal static (long[]? Ids, float[]? Values, bool[] Mask) Inputs(NetworkSpec spec, int n, int seed)
    {
        var random = new Random(seed);
        var mask = new bool[Batch * n];
        for (int b = 0; b < Batch; b++)
            for (int p = 0; p < n; p++)
                mask[b * n + p] = b switch { 0 => true, 1 => p < n - 3, _ => false };
        if (spec.UsesTokens)
            return (Enumerable.Range(0, Batch * n).Select(_ => (long)random.Next(spec.Encoder.VocabularySize!.Value)).ToArray(), null, mask);
        return (null, Enumerable.Range(0, Batch * n * spec.InputChannels).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), mask);
    }

    /// <summary>What the transformer's batch encoder computes (Data/BatchEncoder.cs), with the mask always given.</summary>
    internal static (float[] Features, float[]? Head) TorchSharpOutputs(LinformerNetwork network, long[]? ids, float[]? values, bool[] mask, int n,
        LinformerOutputKind kind, HeadOutput headOutput)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int batch = mask.Length / n;
        var input = ids is not null ? tensor(ids, new long[] { batch, n }) : tensor(values!, new long[] { batch, n, network.Spec.InputChannels });
        var m = tensor(mask, new long[] { batch, n });
        var encoded = network.forward(input, m);
        var features = LinformerNetwork.Pool(encoded, m, kind).contiguous().data<float>().ToArray();
        if (headOutput == HeadOutput.None) return (features, null);
        var y = network.Head(encoded, m);
        if (headOutput == HeadOutput.Probabilities) y = y.softmax(-1);
        else if (headOutput == HeadOutput.LogOddsAndProbability)
        {
            var logOdds = y.select(1, 1) - y.select(1, 0);
            y = stack(new[] { logOdds, logOdds.sigmoid() }, 1);
        }
        return (features, y.contiguous().data<float>().ToArray());
    }

    internal static (float[] Features, float[]? Head) Run(global::Onnx.ModelProto model, NetworkSpec spec, long[]? ids, float[]? values, bool[] mask, int n, int batch = Batch)
    {
        using var stream = new MemoryStream();
        LinformerOnnxExporter.Write(model, stream);
        using var session = new InferenceSession(stream.ToArray(), AllOptimizations());
        var input = ids is not null
            ? NamedOnnxValue.CreateFromTensor(LinformerOnnxExporter.InputName, new DenseTensor<long>(ids, new[] { batch, n }))
            : NamedOnnxValue.CreateFromTensor(LinformerOnnxExporter.InputName, new DenseTensor<float>(values!, new[] { batch, n, spec.InputChannels }));
        using var results = session.Run(new[]
        {
            input,
            NamedOnnxValue.CreateFromTensor(LinformerOnnxExporter.MaskName, new DenseTensor<bool>(mask, new[] { batch, n })),
        });
        var features = results.Single(r => r.Name == LinformerOnnxExporter.FeaturesName).AsTensor<float>().ToArray();
        var head = results.SingleOrDefault(r => r.Name == LinformerOnnxExporter.HeadName)?.AsTensor<float>().ToArray();
        return (features, head);
    }

    internal static double MaxAbs(float[] expected, float[] actual)
    {
        Assert.HasCount(expected.Length, actual, "output length");
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.IsFalse(float.IsNaN(actual[i]) != float.IsNaN(expected[i]), $"value {i}: NaN in one output only ({expected[i]} vs {actual[i]})");
            max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        }
        return max;
    }
}
