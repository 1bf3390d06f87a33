using System.Text.Json;
using Linformer.MLNet.Cli;
using Linformer.MLNet.Persistence;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>
/// Proves that the importer plus the encoder equal linformer-pytorch 0.19.3 for every constructor argument, not
/// only for the four recorded cases: a naive reference of the seed's forward pass (SeedReference.cs), itself
/// validated on the recorded fixtures, computes the expected output of random state dicts for a sweep of
/// configurations; each is written as a case folder and loaded through <see cref="PyTorchReferenceCase"/>.
/// </summary>
[TestClass]
public sealed class SeedArgumentSweepTests
{
    public TestContext TestContext { get; set; } = null!;

    // ---------------------------------------------------------------------------------------------------------
    // 1. The naive reference (and the generator, and the writer) against the recorded fixtures.
    // ---------------------------------------------------------------------------------------------------------

    [TestMethod]
    [DynamicData(nameof(FixtureCases))]
    public void NaiveReferenceReproducesRecordedFixture(string caseName)
    {
        using var scope = NewDisposeScope();
        string folder = Path.Combine(TestPaths.SeedFixtures, caseName);
        var args = ReadFixtureArguments(folder);
        var weights = SeedSafeTensors.Read(Path.Combine(folder, "weights.safetensors"));
        var io = SeedSafeTensors.Read(Path.Combine(folder, "io.safetensors"));
        io.TryGetValue("input_mask", out var mask);

        var output = SeedReference.Forward(args, weights, io["input"], mask);

        Assert.AreEqual(Shape(io["output"]), Shape(output), $"{caseName}: output shape");
        double diff = MaxAbsDiff(output, io["output"]);
        TestContext.WriteLine($"{caseName}: {args} naive reference vs linformer-pytorch max_abs_diff={diff:E3}");
        Assert.IsLessThan(Tolerances.SeedFixture, diff, $"{caseName}: max |naive reference - linformer-pytorch| = {diff:E3}");
    }

    [TestMethod]
    [DynamicData(nameof(FixtureCases))]
    public void GeneratorMatchesRecordedStateDictLayout(string caseName)
    {
        using var scope = NewDisposeScope();
        string folder = Path.Combine(TestPaths.SeedFixtures, caseName);
        var args = ReadFixtureArguments(folder);
        var recorded = SeedSafeTensors.Read(Path.Combine(folder, "weights.safetensors"));
        var generated = SeedStateDict.Generate(args, seed: 7);

        // Same names, in the seed's order (case.json lists the state dict's order).
        var recordedOrder = ReadFixtureParameterNames(folder);
        CollectionAssert.AreEqual(recordedOrder, generated.Keys.ToList(), $"{caseName}: generated names/order differ from the seed's state dict");
        CollectionAssert.AreEquivalent(recorded.Keys.ToList(), generated.Keys.ToList(), $"{caseName}: names in weights.safetensors");
        foreach (var (name, t) in generated)
            Assert.AreEqual(Shape(recorded[name]), Shape(t), $"{caseName}: shape of '{name}'");

        // Shared E/F copies: equal in the generated dict exactly where they are equal in the recorded one.
        var projections = generated.Keys.Where(k => k.Contains(".heads.", StringComparison.Ordinal)).ToList();
        foreach (var x in projections)
            foreach (var y in projections)
            {
                if (string.CompareOrdinal(x, y) >= 0 || Shape(generated[x]) != Shape(generated[y])) continue;
                bool generatedEqual = SameValues(generated[x], generated[y]);
                bool recordedEqual = SameValues(recorded[x], recorded[y]);
                Assert.AreEqual(recordedEqual, generatedEqual, $"{caseName}: '{x}' and '{y}' are {(recordedEqual ? "" : "not ")}copies of one module in the seed");
            }

        if (recorded.TryGetValue("pos_emb.inv_freq", out var invFreq))
        {
            double diff = MaxAbsDiff(generated["pos_emb.inv_freq"], invFreq);
            TestContext.WriteLine($"{caseName}: inv_freq max_abs_diff={diff:E3}");
            Assert.IsLessThanOrEqualTo(1e-7, diff, $"{caseName}: pos_emb.inv_freq computed as the seed does");
        }
    }

    // The written-out pieces of the reference equal PyTorch's own kernels, which the seed calls (the recorded fixtures
    // do not exercise the convolution projection).
    [TestMethod]
    [DataRow(24, 4, 3, 5)]
    [DataRow(97, 97, 2, 1)]
    [DataRow(97, 1, 3, 4)]
    [DataRow(25, 6, 4, 4)]     // n not a multiple of k: the seed's Conv1d gives floor((n - s) / s) + 1 outputs
    public void ReferenceBuildingBlocksEqualTorchKernels(int n, int k, int channelsIn, int channelsOut)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(11);
        int kernel = n / k;
        var t = randn([3, channelsIn, n], generator: g);
        var weight = randn([channelsOut, channelsIn, kernel], generator: g);
        var bias = randn([channelsOut], generator: g);
        var torchConv = nn.functional.conv1d(t, weight, bias, stride: kernel);
        var ours = SeedReference.StridedConv1d(t, weight, bias);
        Assert.AreEqual(Shape(torchConv), Shape(ours), "Conv1d output shape");
        Assert.IsLessThan(1e-5, MaxAbsDiff(torchConv, ours), "Conv1d");

        var x = randn([2, 5, 7], generator: g) * 3;
        var w = randn([7], generator: g);
        var b = randn([7], generator: g);
        Assert.IsLessThan(1e-5, MaxAbsDiff(nn.functional.layer_norm(x, [7], w, b), SeedReference.LayerNorm(x, w, b)), "LayerNorm");
        Assert.IsLessThan(1e-6, MaxAbsDiff(x.softmax(-1), SeedReference.Softmax(x)), "softmax");
        Assert.IsLessThan(1e-6, MaxAbsDiff(nn.functional.gelu(x), SeedReference.Gelu(x)), "GELU");
    }

    [TestMethod]
    public void SafeTensorsWriterRoundTripsThroughBothReaders()
    {
        using var scope = NewDisposeScope();
        using var c = SeedSweepCase.Create("LinformerLM",
            """{"num_tokens": 11, "input_size": 12, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 8, "emb_dim": 6, "return_emb": true}""",
            paddedRows: 2);
        var tensors = c.State
            .Append(new("input", c.Input)).Append(new("input_mask", c.InputMask!)).Append(new("output", c.Output))
            .Append(new("f64", arange(6, dtype: float64).reshape(2, 3) / 3.0))
            .Append(new("i32", arange(-3, 3, dtype: int32)))
            .Append(new("scalar", tensor(2.5f)))
            .Append(new("empty", zeros(0, 4)))
            .ToList();
        string folder = NewTempFolder("roundtrip");
        try
        {
            string path = Path.Combine(folder, "t.safetensors");
            SeedSafeTensors.Write(path, tensors);
            var library = SafeTensors.Read(path);
            var ours = SeedSafeTensors.Read(path);
            CollectionAssert.AreEquivalent(tensors.Select(t => t.Key).ToList(), library.Keys.ToList());
            foreach (var (name, expected) in tensors)
            {
                foreach (var (reader, actual) in new[] { ("library", library[name]), ("test", ours[name]) })
                {
                    Assert.AreEqual(expected.dtype, actual.dtype, $"{reader} reader: dtype of '{name}'");
                    Assert.AreEqual(Shape(expected), Shape(actual), $"{reader} reader: shape of '{name}'");
                    Assert.IsTrue(SameValues(expected, actual), $"{reader} reader: values of '{name}'");
                }
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // ---------------------------------------------------------------------------------------------------------
    // 2. The sweep: random seed state dicts for many argument combinations, loaded through the library.
    // ---------------------------------------------------------------------------------------------------------

    // Every row: name, class, kwargs (verbatim into case.json), number of padded batch rows (> 0 adds an input_mask).
    [TestMethod]
    // parameter_sharing x method (depth 2 so that sharing across layers matters)
    [DataRow("none-learnable", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "none"}""", 0)]
    [DataRow("headwise-learnable", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "headwise"}""", 0)]
    [DataRow("kv-learnable", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "kv"}""", 0)]
    [DataRow("layerwise-learnable", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "layerwise", "method": "learnable"}""", 0)]
    [DataRow("none-convolution", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "none", "method": "convolution"}""", 0)]
    [DataRow("headwise-convolution", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "headwise", "method": "convolution"}""", 0)]
    [DataRow("kv-convolution", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 4, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "kv", "method": "convolution"}""", 0)]
    [DataRow("layerwise-convolution", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 12, "nhead": 4, "depth": 2, "dim_ff": 16, "parameter_sharing": "layerwise", "method": "convolution"}""", 0)]
    // k_reduce_by_layer with each sharing (layerwise: must be ignored, the single projection keeps dim_k)
    [DataRow("none-kreduce", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 3, "depth": 3, "dim_ff": 16, "parameter_sharing": "none", "k_reduce_by_layer": 3}""", 0)]
    [DataRow("headwise-kreduce", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 2, "depth": 3, "dim_ff": 16, "parameter_sharing": "headwise", "k_reduce_by_layer": 2}""", 0)]
    [DataRow("kv-kreduce-floor-at-1", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 3, "depth": 3, "dim_ff": 16, "parameter_sharing": "kv", "k_reduce_by_layer": 5}""", 0)]
    [DataRow("layerwise-kreduce-ignored", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 3, "depth": 3, "dim_ff": 16, "parameter_sharing": "layerwise", "k_reduce_by_layer": 3}""", 0)]
    [DataRow("none-convolution-kreduce", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "none", "method": "convolution", "k_reduce_by_layer": 3}""", 0)]
    [DataRow("headwise-convolution-kreduce-to-1", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 2, "depth": 3, "dim_ff": 16, "parameter_sharing": "headwise", "method": "convolution", "k_reduce_by_layer": 4}""", 0)]
    [DataRow("kv-convolution-kreduce", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 12, "nhead": 3, "depth": 3, "dim_ff": 16, "parameter_sharing": "kv", "method": "convolution", "k_reduce_by_layer": 4}""", 0)]
    [DataRow("layerwise-negative-kreduce-ignored", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "k_reduce_by_layer": -2, "checkpoint_level": "C0"}""", 0)]
    [DataRow("layerwise-convolution-kreduce-ignored", "Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "layerwise", "method": "convolution", "k_reduce_by_layer": 1}""", 0)]
    // dim_d and nhead
    [DataRow("dim_d-custom", "Linformer", """{"input_size": 20, "channels": 12, "dim_k": 5, "nhead": 3, "dim_d": 7, "depth": 2, "dim_ff": 16, "parameter_sharing": "none"}""", 0)]
    [DataRow("dim_d-channels-not-divisible-convolution", "Linformer", """{"input_size": 20, "channels": 10, "dim_k": 5, "nhead": 3, "dim_d": 4, "depth": 2, "dim_ff": 16, "parameter_sharing": "headwise", "method": "convolution"}""", 0)]
    [DataRow("dim_d-nhead-1-layerwise", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 1, "dim_d": 5, "depth": 2, "dim_ff": 16}""", 0)]
    [DataRow("nhead-1-kv", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 1, "depth": 2, "dim_ff": 16, "parameter_sharing": "kv"}""", 0)]
    [DataRow("nhead-3-seed-defaults", "Linformer", """{"input_size": 18, "channels": 9, "dim_k": 6, "nhead": 3}""", 0)]
    [DataRow("nhead-equals-channels", "Linformer", """{"input_size": 14, "channels": 7, "dim_k": 7, "nhead": 7, "dim_ff": 8, "parameter_sharing": "none", "method": "convolution"}""", 0)]
    // depth and activation
    [DataRow("depth-1-relu", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 1, "dim_ff": 16, "activation": "relu"}""", 0)]
    [DataRow("depth-3-gelu", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 3, "dim_ff": 16, "activation": "gelu", "parameter_sharing": "headwise"}""", 0)]
    [DataRow("depth-3-relu-convolution", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 8, "nhead": 4, "depth": 3, "dim_ff": 12, "activation": "relu", "method": "convolution", "parameter_sharing": "kv"}""", 0)]
    // full_attention (E/F present in the state dict but unused)
    [DataRow("full-attention-layerwise", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "dim_ff": 16, "full_attention": true}""", 0)]
    [DataRow("full-attention-none-convolution-indivisible", "Linformer", """{"input_size": 25, "channels": 8, "dim_k": 6, "nhead": 2, "depth": 2, "dim_ff": 16, "full_attention": true, "parameter_sharing": "none", "method": "convolution"}""", 0)]
    [DataRow("full-attention-no-params", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "dim_ff": 16, "full_attention": true, "method": "no_params"}""", 0)]
    [DataRow("full-attention-dim_k-exceeds-n", "Linformer", """{"input_size": 12, "channels": 8, "dim_k": 20, "nhead": 2, "dim_ff": 8, "full_attention": true, "parameter_sharing": "headwise"}""", 0)]
    [DataRow("full-attention-kv-kreduce-mask", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 6, "nhead": 2, "depth": 2, "dim_ff": 16, "full_attention": true, "parameter_sharing": "kv", "k_reduce_by_layer": 3}""", 2)]
    // include_ff
    [DataRow("no-ff-kv", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "parameter_sharing": "kv", "include_ff": false}""", 0)]
    [DataRow("no-ff-depth-3-none-convolution-mask", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 3, "parameter_sharing": "none", "method": "convolution", "include_ff": false}""", 1)]
    // w_o_intermediate_dim
    [DataRow("w_o-intermediate-none", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "none", "w_o_intermediate_dim": 5}""", 0)]
    [DataRow("w_o-intermediate-wide-layerwise-mask", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "dim_ff": 16, "w_o_intermediate_dim": 20}""", 2)]
    // input masks (padded rows: half the sequence, one real position, scattered)
    [DataRow("mask-layerwise", "Linformer", """{"input_size": 20, "channels": 8, "dim_k": 5, "nhead": 2, "depth": 2, "dim_ff": 16}""", 3)]
    [DataRow("mask-none-convolution", "Linformer", """{"input_size": 20, "channels": 8, "dim_k": 5, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "none", "method": "convolution"}""", 2)]
    [DataRow("mask-headwise-kreduce", "Linformer", """{"input_size": 20, "channels": 8, "dim_k": 6, "nhead": 2, "depth": 3, "dim_ff": 16, "parameter_sharing": "headwise", "k_reduce_by_layer": 2}""", 1)]
    [DataRow("mask-all-patterns-headwise-convolution", "Linformer", """{"input_size": 20, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "headwise", "method": "convolution"}""", 4)]
    [DataRow("mask-kv-convolution-dim_d", "Linformer", """{"input_size": 20, "channels": 9, "dim_k": 10, "nhead": 2, "dim_d": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "kv", "method": "convolution"}""", 3)]
    // no-op and explicit-default arguments
    [DataRow("explicit-defaults-and-no-ops", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "dim_ff": 16, "dim_d": null, "dropout_ff": 0.3, "nhead": 2, "depth": 2, "dropout": 0.2, "activation": "gelu", "checkpoint_level": "C1", "parameter_sharing": "layerwise", "k_reduce_by_layer": 0, "full_attention": false, "include_ff": true, "w_o_intermediate_dim": null, "decoder_mode": false, "causal": false, "method": "learnable", "ff_intermediate": null}""", 0)]
    [DataRow("checkpoint-C2-zero-dropout", "Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "checkpoint_level": "C2", "dropout": 0.0, "dropout_ff": 0.0, "parameter_sharing": "none"}""", 0)]
    // LinformerLM (return_emb=True)
    [DataRow("lm-seed-defaults", "LinformerLM", """{"num_tokens": 30, "input_size": 64, "channels": 8, "return_emb": true}""", 0)]
    [DataRow("lm-emb_dim-smaller", "LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 12, "dim_k": 4, "nhead": 3, "dim_ff": 16, "emb_dim": 10, "return_emb": true}""", 0)]
    [DataRow("lm-emb_dim-larger-mask", "LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "emb_dim": 16, "parameter_sharing": "none", "return_emb": true}""", 2)]
    [DataRow("lm-dropout_tokens-mask", "LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "dropout_tokens": 0.3, "return_emb": true}""", 2)]
    [DataRow("lm-dropout_tokens-zero-checkpoint-C1", "LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "dropout_tokens": 0.0, "checkpoint_level": "C1", "return_emb": true}""", 0)]
    [DataRow("lm-emb_dim-equal-explicit", "LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "emb_dim": 8, "return_emb": true}""", 0)]
    [DataRow("lm-kv-convolution-kreduce", "LinformerLM", """{"num_tokens": 25, "input_size": 24, "channels": 8, "dim_k": 12, "nhead": 2, "dim_ff": 16, "depth": 3, "parameter_sharing": "kv", "method": "convolution", "k_reduce_by_layer": 4, "return_emb": true}""", 0)]
    [DataRow("lm-none-dim_d-w_o-relu", "LinformerLM", """{"num_tokens": 25, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 3, "dim_d": 5, "dim_ff": 16, "parameter_sharing": "none", "w_o_intermediate_dim": 6, "activation": "relu", "return_emb": true}""", 1)]
    [DataRow("lm-headwise-depth-3-emb_dim", "LinformerLM", """{"num_tokens": 25, "input_size": 16, "channels": 8, "dim_k": 8, "nhead": 2, "dim_ff": 16, "depth": 3, "parameter_sharing": "headwise", "k_reduce_by_layer": 3, "emb_dim": 6, "return_emb": true}""", 0)]
    [DataRow("lm-full-attention-no-ff", "LinformerLM", """{"num_tokens": 25, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 2, "full_attention": true, "include_ff": false, "emb_dim": null, "dim_d": null, "ff_intermediate": null, "decoder_mode": false, "causal": false, "return_emb": true}""", 1)]
    [DataRow("lm-layerwise-convolution-kreduce-ignored", "LinformerLM", """{"num_tokens": 25, "input_size": 16, "channels": 8, "dim_k": 8, "nhead": 2, "dim_ff": 16, "depth": 2, "method": "convolution", "k_reduce_by_layer": 3, "return_emb": true}""", 0)]
    // odd sizes: n = 97 (prime) with k = 1 and k = n; tiny models
    [DataRow("n97-k1-learnable-none", "Linformer", """{"input_size": 97, "channels": 8, "dim_k": 1, "nhead": 2, "depth": 2, "dim_ff": 8, "parameter_sharing": "none"}""", 0)]
    [DataRow("n97-k97-learnable-headwise", "Linformer", """{"input_size": 97, "channels": 8, "dim_k": 97, "nhead": 2, "depth": 2, "dim_ff": 8, "parameter_sharing": "headwise"}""", 0)]
    [DataRow("n97-k1-convolution-kv", "Linformer", """{"input_size": 97, "channels": 8, "dim_k": 1, "nhead": 2, "depth": 2, "dim_ff": 8, "parameter_sharing": "kv", "method": "convolution"}""", 0)]
    [DataRow("n97-k97-convolution-none-mask", "Linformer", """{"input_size": 97, "channels": 6, "dim_k": 97, "nhead": 3, "depth": 1, "dim_ff": 8, "parameter_sharing": "none", "method": "convolution"}""", 2)]
    [DataRow("n97-k97-layerwise-mask", "Linformer", """{"input_size": 97, "channels": 8, "dim_k": 97, "nhead": 2, "depth": 2, "dim_ff": 8}""", 3)]
    [DataRow("n97-kv-kreduce-to-1", "Linformer", """{"input_size": 97, "channels": 8, "dim_k": 4, "nhead": 2, "depth": 3, "dim_ff": 8, "parameter_sharing": "kv", "k_reduce_by_layer": 2}""", 1)]
    [DataRow("lm-n97-k1-emb_dim", "LinformerLM", """{"num_tokens": 40, "input_size": 97, "channels": 6, "dim_k": 1, "nhead": 2, "dim_ff": 8, "emb_dim": 4, "return_emb": true}""", 1)]
    [DataRow("k-equals-n-tiny", "Linformer", """{"input_size": 5, "channels": 4, "dim_k": 5, "nhead": 2, "depth": 2, "dim_ff": 4, "parameter_sharing": "none"}""", 1)]
    [DataRow("n1-convolution", "Linformer", """{"input_size": 1, "channels": 4, "dim_k": 1, "nhead": 2, "depth": 2, "dim_ff": 4, "method": "convolution", "parameter_sharing": "headwise"}""", 0)]
    [DataRow("n1-learnable-lm", "LinformerLM", """{"num_tokens": 3, "input_size": 1, "channels": 4, "dim_k": 1, "nhead": 1, "dim_ff": 4, "depth": 1, "return_emb": true}""", 0)]
    public void ImportedEncoderMatchesNaiveSeedReference(string name, string className, string kwargs, int paddedRows)
    {
        using var scope = NewDisposeScope();
        using var expected = SeedSweepCase.Create(className, kwargs, paddedRows);
        string folder = NewTempFolder(name);
        try
        {
            expected.WriteTo(folder);
            using var imported = PyTorchReferenceCase.Load(folder);
            using var actual = imported.Run();

            Assert.AreEqual(Shape(expected.Output), Shape(actual), $"{name}: output shape");
            double diff = MaxAbsDiff(actual, expected.Output);
            double recorded = imported.MaxAbsoluteDifference();   // the library's own comparison with io.safetensors:output
            double magnitude = expected.Output.abs().max().item<float>();
            TestContext.WriteLine($"{name}: {expected.Arguments} mask_rows={paddedRows} max_abs_diff={diff:E3} (library's check {recorded:E3}, max |output| {magnitude:F2})");
            Assert.IsTrue(double.IsFinite(magnitude) && magnitude > 0.5, $"{name}: the reference output is degenerate (max |output| = {magnitude})");
            Assert.IsLessThan(Tolerances.SeedSweep, diff, $"{name}: max |ours - seed reference| = {diff:E3} for {expected.Arguments}");
            Assert.IsLessThan(Tolerances.SeedSweep, recorded, $"{name}: PyTorchReferenceCase.MaxAbsoluteDifference = {recorded:E3}");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // The sweep would be worthless if its tolerance could not see a wrong weight or an ignored mask.
    [TestMethod]
    public void SweepComparisonDetectsSmallErrors()
    {
        using var scope = NewDisposeScope();
        const string kwargs = """{"input_size": 20, "channels": 8, "dim_k": 5, "nhead": 2, "depth": 2, "dim_ff": 16, "parameter_sharing": "none"}""";
        using var c = SeedSweepCase.Create("Linformer", kwargs, paddedRows: 2);

        // The mask matters: without it, the reference output of the padded rows' real positions changes.
        using var unmasked = SeedReference.Forward(c.Arguments, c.State, c.Input, null);
        double maskEffect = MaxAbsDiff(unmasked, c.Output);
        TestContext.WriteLine($"ignoring the mask changes the output by {maskEffect:E3}");
        Assert.IsGreaterThan(1e-2, maskEffect);

        // A 1% error in one weight of the last head of the last layer is far above the tolerance.
        string folder = NewTempFolder("perturbed");
        try
        {
            var perturbed = c.State.ToDictionary(kv => kv.Key, kv => kv.Key == "seq.2.fn.to_v.1.weight" ? kv.Value * 1.01f : kv.Value);
            SeedCaseFolder.Write(folder, "Linformer", kwargs, perturbed, c.Input, c.InputMask, c.Output);
            using var imported = PyTorchReferenceCase.Load(folder);
            double diff = imported.MaxAbsoluteDifference();
            TestContext.WriteLine($"a 1% error in seq.2.fn.to_v.1.weight gives max_abs_diff={diff:E3}");
            Assert.IsGreaterThan(100 * Tolerances.SeedSweep, diff);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // ---------------------------------------------------------------------------------------------------------
    // 3. Arguments and state dicts that cannot be honoured: clear errors naming the argument or tensor.
    // ---------------------------------------------------------------------------------------------------------

    private const string BaseKwargs = """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "kv"}""";

    [TestMethod]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "causal": true}""", "causal")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "decoder_mode": true}""", "decoder_mode")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "ff_intermediate": 16}""", "ff_intermediate")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": false}""", "return_emb")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3}""", "return_emb")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "dim_kk": 6}""", "dim_kk")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": true, "use_pos_emb": false}""", "use_pos_emb")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": "True"}""", "return_emb")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "parameter_sharing": "kv", "k_reduce_by_layer": -2}""", "k_reduce_by_layer")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "emb_dim": 8}""", "emb_dim")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": "3"}""", "nhead")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 4.5, "nhead": 3}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "full_attention": 1}""", "full_attention")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "dropout": "0.1"}""", "dropout")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "activation": 1}""", "activation")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "parameter_sharing": "weird"}""", "parameter_sharing")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "method": "fourier"}""", "method")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "activation": "tanh"}""", "activation")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "checkpoint_level": "C3"}""", "checkpoint_level")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "dropout_tokens": 0.1}""", "dropout_tokens")]   // LinformerLM's only
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": true, "dropout_tokens": "0.1"}""", "dropout_tokens")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": true, "dropout_tokens": 1.5}""", "dropout_tokens")]
    [DataRow("LinformerLM", """{"num_tokens": 10, "input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": true, "dropout_tokens": -0.1}""", "dropout_tokens")]
    [DataRow("Linformer", """{"input_size": 25, "channels": 12, "dim_k": 6, "nhead": 3, "method": "convolution"}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 8, "nhead": 3, "depth": 2, "method": "convolution", "parameter_sharing": "kv", "k_reduce_by_layer": 3}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 25, "nhead": 3}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 0, "nhead": 3}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": -2, "nhead": 3, "parameter_sharing": "none"}""", "dim_k")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 10, "dim_k": 6, "nhead": 3}""", "nhead")]
    [DataRow("Linformer", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 0}""", "nhead")]
    [DataRow("Linformer", """{"channels": 12, "dim_k": 6, "nhead": 3}""", "input_size")]
    [DataRow("LinformerLM", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "return_emb": true}""", "num_tokens")]
    [DataRow("LinformerEncDec", """{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3}""", "LinformerEncDec")]
    public void UnsupportedArgumentsAreRefusedNamingTheArgument(string className, string kwargs, string argument)
    {
        using var scope = NewDisposeScope();
        using var valid = SeedSweepCase.Create("Linformer", BaseKwargs);
        string folder = NewTempFolder("bad-arguments");
        try
        {
            valid.WriteTo(folder);
            SeedCaseFolder.WriteCaseJson(folder, className, kwargs, valid.State.Keys, hasMask: false);
            var direct = Assert.Throws<ArgumentException>(() => PyTorchImport.OptionsFromSeedArguments(className, ParseKwargs(kwargs)));
            var loaded = Assert.Throws<ArgumentException>(() => PyTorchReferenceCase.Load(folder).Dispose());
            TestContext.WriteLine($"{className}({kwargs}): {loaded.Message}");
            Assert.Contains(argument, direct.Message, $"the error should name '{argument}': {direct.Message}");
            Assert.Contains(argument, loaded.Message, $"the error should name '{argument}': {loaded.Message}");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // The seed's Linformer.forward asserts `checkpoint_level == "C0" if kwargs`: with C1 or C2 it refuses input_mask
    // (LinformerLM passes its kwargs through). A recorded case with a mask and C1/C2 cannot come from the seed.
    [TestMethod]
    [DataRow("Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "checkpoint_level": "C1"}""")]
    [DataRow("Linformer", """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "checkpoint_level": "C2", "parameter_sharing": "none"}""")]
    [DataRow("LinformerLM", """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "emb_dim": 6, "checkpoint_level": "C2", "return_emb": true}""")]
    public void CheckpointingWithAMaskIsRefusedAsTheSeedDoes(string className, string kwargs)
    {
        using var scope = NewDisposeScope();
        string level = ParseKwargs(kwargs)["checkpoint_level"].GetString()!;
        string folder = NewTempFolder("checkpoint-mask");
        try
        {
            // Without a mask the seed runs C1/C2 like C0 in eval mode: the case loads and matches.
            using (var unmasked = SeedSweepCase.Create(className, kwargs))
            {
                unmasked.WriteTo(folder);
                using var loaded = PyTorchReferenceCase.Load(folder);
                Assert.IsLessThan(Tolerances.SeedSweep, loaded.MaxAbsoluteDifference(), $"{level} without a mask");
            }
            Directory.Delete(folder, recursive: true);
            Directory.CreateDirectory(folder);
            using var masked = SeedSweepCase.Create(className, kwargs, paddedRows: 1);
            masked.WriteTo(folder);
            var error = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchReferenceCase.Load(folder).Dispose());
            TestContext.WriteLine(error.Message);
            StringAssert.Contains(error.Message, $"has an input_mask, but case.json sets checkpoint_level '{level}'");
            StringAssert.Contains(error.Message, "unless checkpoint_level is C0");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [TestMethod]
    public void NoParamsWeightsAreRefusedClearly()
    {
        using var scope = NewDisposeScope();
        // What the seed saves for method="no_params": no E/F at all (its matrices are plain tensors, not parameters).
        const string kwargs = """{"input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "method": "no_params", "parameter_sharing": "none"}""";
        var args = SeedArguments.Parse("Linformer", kwargs);
        var state = SeedStateDict.Generate(args, seed: 3);
        Assert.IsFalse(state.Keys.Any(k => k.Contains(".heads.", StringComparison.Ordinal)), "the seed saves no E/F for no_params");
        Assert.Throws<NotSupportedException>(() => SeedReference.Forward(args, state, zeros(1, 16, 8), null));

        string folder = NewTempFolder("no-params");
        try
        {
            using var input = randn(2, 16, 8);
            using var placeholder = zeros(2, 16, 8);
            SeedCaseFolder.Write(folder, "Linformer", kwargs, state, input, null, placeholder);
            var error = Assert.Throws<InvalidDataException>(() => PyTorchReferenceCase.Load(folder).Dispose());
            TestContext.WriteLine(error.Message);
            Assert.Contains("no_params", error.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // mutation: remove | add | reshape (first dimension + 1) | retype (int64) | perturb (one shared copy off by 1e-3)
    [TestMethod]
    [DataRow("kv", "learnable", "remove", "seq.0.fn.to_k.1.weight")]
    [DataRow("none", "learnable", "remove", "seq.2.fn.heads.2.F.bias")]
    [DataRow("kv", "learnable", "remove", "seq.3.norm.bias")]
    [DataRow("kv", "learnable", "add", "seq.0.fn.to_r.0.weight")]
    [DataRow("kv", "learnable", "add", "E.weight")]
    [DataRow("kv", "learnable", "reshape", "seq.1.fn.w_1.weight")]
    [DataRow("none", "learnable", "reshape", "seq.2.fn.heads.0.E.weight")]
    [DataRow("headwise", "convolution", "reshape", "seq.0.fn.heads.1.F.weight")]
    [DataRow("kv", "learnable", "retype", "seq.2.fn.w_o.bias")]
    [DataRow("layerwise", "learnable", "reshape", "seq.2.fn.heads.0.E.bias")]
    [DataRow("layerwise", "learnable", "perturb", "seq.2.fn.heads.1.F.weight")]
    [DataRow("layerwise", "convolution", "perturb", "seq.0.fn.heads.2.E.bias")]
    [DataRow("kv", "learnable", "perturb", "seq.0.fn.heads.0.F.bias")]
    [DataRow("kv", "convolution", "perturb", "seq.2.fn.heads.2.E.weight")]
    [DataRow("headwise", "learnable", "perturb", "seq.2.fn.heads.1.E.weight")]
    [DataRow("headwise", "convolution", "perturb", "seq.0.fn.heads.2.F.bias")]
    public void InconsistentStateDictsAreRefusedNamingTheTensor(string sharing, string method, string mutation, string tensorName)
    {
        using var scope = NewDisposeScope();
        string kwargs = $$"""{"input_size": 24, "channels": 12, "dim_k": 6, "nhead": 3, "depth": 2, "dim_ff": 16, "parameter_sharing": "{{sharing}}", "method": "{{method}}"}""";
        using var c = SeedSweepCase.Create("Linformer", kwargs);
        var state = new Dictionary<string, Tensor>(c.State, StringComparer.Ordinal);
        switch (mutation)
        {
            case "remove": Assert.IsTrue(state.Remove(tensorName), tensorName); break;
            case "add": state.Add(tensorName, ones(3, 4)); break;
            case "reshape":
                var shape = Shape(state[tensorName]).Split('x').Select(long.Parse).ToArray();
                shape[0] += 1;
                state[tensorName] = randn(shape);
                break;
            case "perturb": state[tensorName] = state[tensorName] + 1e-3f; break;
            case "retype": state[tensorName] = state[tensorName].to_type(ScalarType.Int64); break;
            default: Assert.Fail($"unknown mutation {mutation}"); break;
        }
        string folder = NewTempFolder("bad-state");
        try
        {
            SeedCaseFolder.Write(folder, "Linformer", kwargs, state, c.Input, null, c.Output);
            var error = Assert.Throws<InvalidDataException>(() => PyTorchReferenceCase.Load(folder).Dispose());
            TestContext.WriteLine($"{sharing}/{method} {mutation} {tensorName}: {error.Message}");
            string named = mutation == "perturb" ? tensorName[..tensorName.LastIndexOf('.')] : tensorName;
            Assert.Contains(named, error.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [TestMethod]
    [DataRow("remove", "to_token_emb.weight")]
    [DataRow("remove", "linformer.project_out.bias")]
    [DataRow("add", "to_logits.weight")]
    [DataRow("reshape", "linformer.project_in.weight")]
    public void InconsistentLanguageModelStateDictsAreRefused(string mutation, string tensorName)
    {
        using var scope = NewDisposeScope();
        const string kwargs = """{"num_tokens": 20, "input_size": 16, "channels": 8, "dim_k": 4, "nhead": 2, "dim_ff": 16, "emb_dim": 6, "return_emb": true}""";
        using var c = SeedSweepCase.Create("LinformerLM", kwargs);
        var state = new Dictionary<string, Tensor>(c.State, StringComparer.Ordinal);
        switch (mutation)
        {
            case "remove": Assert.IsTrue(state.Remove(tensorName), tensorName); break;
            case "add": state.Add(tensorName, ones(20, 6)); break;
            case "reshape": state[tensorName] = randn(9, 6); break;
            default: Assert.Fail($"unknown mutation {mutation}"); break;
        }
        string folder = NewTempFolder("bad-lm-state");
        try
        {
            SeedCaseFolder.Write(folder, "LinformerLM", kwargs, state, c.Input, null, c.Output);
            var error = Assert.Throws<InvalidDataException>(() => PyTorchReferenceCase.Load(folder).Dispose());
            TestContext.WriteLine($"{mutation} {tensorName}: {error.Message}");
            Assert.Contains(tensorName, error.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    // ---------------------------------------------------------------------------------------------------------

    public static IEnumerable<object[]> FixtureCases => TestPaths.SeedCaseNames();

    private static SeedArguments ReadFixtureArguments(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        return SeedArguments.Parse(doc.RootElement.GetProperty("class").GetString()!, doc.RootElement.GetProperty("kwargs").GetRawText());
    }

    private static List<string> ReadFixtureParameterNames(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        return doc.RootElement.GetProperty("parameter_names").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    private static Dictionary<string, JsonElement> ParseKwargs(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
    }

    private static string Shape(Tensor t) => string.Join("x", t.shape);

    private static bool SameValues(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    private static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max().item<double>();
    }

    private static string NewTempFolder(string name)
    {
        string folder = Path.Combine(Path.GetTempPath(), "linformer-seed-sweep", $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }
}
