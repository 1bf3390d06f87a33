using System.Globalization;
using Google.Protobuf;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Modules;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Linformer.MLNet.Onnx;

// Shapes: B batch (dynamic), n exported length, C model width, W embedding width, I input channels, H heads,
// D head width, K projected length, V vocabulary, L classes.

/// <summary>
/// Writes a <see cref="LinformerNetwork"/> in eval mode as one ONNX graph, module by module, with the same operations
/// the TorchSharp forward runs (docs/onnx.md lists the inputs and outputs):
/// <list type="bullet">
/// <item><c>input</c>: int64 token ids (B, n), or float (B, n, I); <c>mask</c>: bool (B, n), true = real position.</item>
/// <item><c>features</c>: float (B, F), what the transformer's output column holds; <c>head</c>: float (B, S), the
/// head's values the transformer emits (probabilities, log-odds and probability, or the regression value).</item>
/// </list>
/// </summary>
internal sealed class LinformerOnnxExporter
{
    public const string InputName = "input";
    public const string MaskName = "mask";
    public const string FeaturesName = "features";
    public const string HeadName = "head";
    private const string Batch = "batch";

    private readonly OnnxGraph g = new();
    private readonly LinformerNetwork network;
    private readonly LinformerEncoderOptions options;
    private readonly int length;
    private readonly bool int8;
    // Weights shared by several layers or by E and F are written once.
    private readonly Dictionary<(object Module, string Part), string> written = new();

    /// <summary>
    /// The largest int8 weight magnitude: 63, not 127. x64 CPUs without VNNI multiply uint8 by int8 with VPMADDUBSW,
    /// which saturates a pair of products at 32767 (2 · 255 · 127 would overflow it, 2 · 255 · 63 does not), so with
    /// 7-bit weights ONNX Runtime computes the exact integer products on every CPU (the reduce-range rule of ONNX
    /// Runtime's own quantiser).
    /// </summary>
    public const int Int8WeightLevels = 63;

    private LinformerOnnxExporter(LinformerNetwork network, int length, LinformerOnnxQuantization quantization)
    {
        this.network = network;
        options = network.Spec.Encoder;
        this.length = length;
        int8 = quantization == LinformerOnnxQuantization.Int8;
    }

    /// <summary>The whole network as an ONNX model.</summary>
    /// <param name="network">The network (eval mode is not required: the graph has no dropout).</param>
    /// <param name="outputKind">What <c>features</c> holds.</param>
    /// <param name="headOutput">What <c>head</c> holds; <see cref="HeadOutput.None"/> leaves it out.</param>
    /// <param name="length">Exported sequence length n (1 … N); null = N.</param>
    /// <param name="quantization">Float32, or int8 dense maps (<see cref="LinformerOnnxQuantization.Int8"/>).</param>
    public static ModelProto Export(LinformerNetwork network, LinformerOutputKind outputKind, HeadOutput headOutput, int? length = null,
        LinformerOnnxQuantization quantization = LinformerOnnxQuantization.None)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (!Enum.IsDefined(quantization))
            throw new ArgumentOutOfRangeException(nameof(quantization), quantization, string.Create(CultureInfo.InvariantCulture,
                $"The quantization must be {nameof(LinformerOnnxQuantization.None)} or {nameof(LinformerOnnxQuantization.Int8)}; got {(int)quantization}."));
        int n = length ?? network.Spec.Encoder.SequenceLength;
        if (n <= 0 || n > network.Spec.Encoder.SequenceLength)
            throw new ArgumentOutOfRangeException(nameof(length), n, string.Create(CultureInfo.InvariantCulture,
                $"The exported length must be between 1 and the model's sequence length ({network.Spec.Encoder.SequenceLength}); got {n}."));
        if (headOutput != HeadOutput.None && network.Spec.Head == HeadKind.None)
            throw new ArgumentException("The network has no supervised head to export.", nameof(headOutput));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return new LinformerOnnxExporter(network, n, quantization).Build(outputKind, headOutput);
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="stream"/> in the ONNX (protobuf) format.</summary>
    public static void Write(ModelProto model, Stream stream)
    {
        using var coded = new CodedOutputStream(stream, leaveOpen: true);
        model.WriteTo(coded);
        coded.Flush();
    }

    private ModelProto Build(LinformerOutputKind outputKind, HeadOutput headOutput)
    {
        var spec = network.Spec;
        string input = spec.UsesTokens
            ? g.Input(InputName, DataType.Int64, Batch, length)
            : g.Input(InputName, DataType.Float, Batch, length, spec.InputChannels);
        string mask = g.Input(MaskName, DataType.Bool, Batch, length);
        string maskFloat = g.Cast(mask, DataType.Float);                        // (B, n)
        string maskColumn = g.Unsqueeze(maskFloat, 2);                         // (B, n, 1)

        string encoded = Encode(input, mask, maskFloat, maskColumn);           // (B, n, W)
        int width = spec.Width;

        string features = outputKind switch
        {
            LinformerOutputKind.FirstPosition => g.Node("Gather", new[] { encoded, g.Int64s(new[] { 0L }, scalar: true) }, OnnxGraph.Int("axis", 1)),
            LinformerOutputKind.Sequence => g.Reshape(encoded, -1, (long)length * width),
            _ => MaskedMean(encoded, maskColumn),
        };
        g.Output(features, FeaturesName, DataType.Float, Batch, outputKind == LinformerOutputKind.Sequence ? (long)length * width : width);

        if (headOutput != HeadOutput.None)
        {
            var head = network.HeadLayer!;
            string y = Linear(MaskedMean(encoded, maskColumn), head);          // (B, L) logits or (B, 1)
            int size = 1;
            switch (headOutput)
            {
                case HeadOutput.Probabilities:
                    y = g.Node("Softmax", new[] { y }, OnnxGraph.Int("axis", -1));
                    size = spec.Classes;
                    break;
                case HeadOutput.LogOddsAndProbability:
                {
                    string logit0 = g.Node("Gather", new[] { y, g.Int64s(new[] { 0L }) }, OnnxGraph.Int("axis", 1));   // (B, 1)
                    string logit1 = g.Node("Gather", new[] { y, g.Int64s(new[] { 1L }) }, OnnxGraph.Int("axis", 1));
                    string logOdds = g.Sub(logit1, logit0);
                    y = g.Node("Concat", new[] { logOdds, g.Node("Sigmoid", new[] { logOdds }) }, OnnxGraph.Int("axis", 1));   // (B, 2)
                    size = 2;
                    break;
                }
            }
            g.Output(y, HeadName, DataType.Float, Batch, size);
        }
        return g.ToModel(typeof(LinformerOnnxExporter).Assembly.GetName().Version?.ToString() ?? "0");
    }

    /// <summary>The network's forward: (B, n) ids or (B, n, I) floats → (B, n, W).</summary>
    private string Encode(string input, string mask, string maskFloat, string maskColumn)
    {
        var encoder = network.Encoder;
        string x = network.InputProjection is { } inputProjection ? Linear(input, inputProjection) : input;   // (B, n, C)
        if (encoder.TokenEmbedding is { } tokens) x = TokenEmbedding(x, tokens);                               // (B, n, W)
        if (encoder.PositionEmbeddingModule is { } positions)
            x = g.Add(x, g.Initializer("position_embedding", positions.forward(length)));                    // + (1, n, W)
        if (encoder.ProjectIn is { } projectIn) x = Linear(x, projectIn);                                     // (B, n, C)

        string? keyMask = options.FullAttention ? KeyMask(mask, maskFloat) : null;
        foreach (var layer in encoder.Layers) x = Layer(x, layer, maskColumn, keyMask);
        if (encoder.FinalNorm is { } finalNorm) x = LayerNorm(x, finalNorm);
        if (encoder.ProjectOut is { } projectOut) x = Linear(x, projectOut);                                  // (B, n, W)
        return x;
    }

    /// <summary>The token embedding lookup, the one place that reads token ids: (B, n) int64 → (B, n, W).</summary>
    private string TokenEmbedding(string ids, Embedding table)
        => g.Node("Gather", new[] { Weight(table, "weight", () => table.weight!), ids }, OnnxGraph.Int("axis", 0));

    private string Layer(string x, LinformerEncoderLayer layer, string maskColumn, string? keyMask)
    {
        x = Residual(x, t => Attention(t, layer.Attention, maskColumn, keyMask), layer.AttentionNorm);
        if (layer.FeedForwardBlock is { } ff) x = Residual(x, t => FeedForward(t, ff), layer.FeedForwardNorm!);
        return x;
    }

    private string Residual(string x, Func<string, string> block, LayerNorm norm)
        => options.NormPlacement == NormPlacement.PostNorm
            ? LayerNorm(g.Add(x, block(x)), norm)
            : g.Add(x, block(LayerNorm(x, norm)));

    private string FeedForward(string x, FeedForward ff)
    {
        string h = Linear(x, ff.W1);
        h = options.Activation == Activation.Relu ? g.Node("Relu", new[] { h }) : Gelu(h);
        return Linear(h, ff.W2);
    }

    /// <summary>Exact (erf) GELU: 0.5·x·(1 + erf(x/√2)).</summary>
    private string Gelu(string x)
    {
        string erf = g.Node("Erf", new[] { g.Mul(x, g.Float((float)(1.0 / Math.Sqrt(2.0)))) });
        return g.Mul(g.Mul(x, g.Float(0.5f)), g.Add(erf, g.Float(1f)));
    }

    /// <summary>Linformer self-attention, the four steps of <see cref="LinformerSelfAttention.forward"/>: (B, n, C) → (B, n, C).</summary>
    private string Attention(string x, LinformerSelfAttention attention, string maskColumn, string? keyMask)
    {
        int h = options.Heads, d = options.EffectiveHeadWidth;
        long hd = (long)h * d;
        var qkv = attention.Qkv;
        string Map(string input, int part)                                                         // (…, C) @ (C, H·D)
            => Dense(input, qkv, "qkv" + part.ToString(CultureInfo.InvariantCulture), () => qkv.weight!.narrow(0, part * hd, hd).t());

        string q = SplitHeads(Map(x, 0), length);                                                  // (B, H, n, D)

        // Step 2: padded rows zeroed before E and F (exact with the bias-free K/V maps), then projected.
        var projections = attention.Projections;
        string xm = g.Mul(x, maskColumn);                                                          // (B, n, C)
        string k, v;
        if (projections.IsFullAttention)
        {
            k = SplitHeads(Map(xm, 1), length);                                                    // (B, H, n, D)
            v = SplitHeads(Map(xm, 2), length);
        }
        else if (projections.ProjectsInputFirst)
        {
            var e = projections.Key!;
            var f = projections.Value!;
            string forKey = SequenceMatMul(e, xm, 1);                                              // (K, n) @ (B, n, C) → (B, K, C)
            string forValue = ReferenceEquals(e, f) ? forKey : SequenceMatMul(f, xm, 1);
            k = SplitHeads(AddSequenceBias(Map(forKey, 1), e), e.ProjectedLength);                 // (B, H, K, D)
            v = SplitHeads(AddSequenceBias(Map(forValue, 2), f), f.ProjectedLength);
        }
        else
        {
            k = Project(SplitHeads(Map(xm, 1), length), projections.Key!);                         // (B, H, K, D)
            v = Project(SplitHeads(Map(xm, 2), length), projections.Value!);
        }

        // Step 3: softmax(Q Kᵀ / √D) V; full attention masks padded keys.
        string scores = g.Mul(g.MatMul(q, g.Transpose(k, 0, 1, 3, 2)), g.Float((float)(1.0 / Math.Sqrt(d))));   // (B, H, n, K)
        if (keyMask is not null) scores = g.Node("Where", new[] { keyMask, scores, g.Float(float.NegativeInfinity) });
        string attended = g.MatMul(g.Node("Softmax", new[] { scores }, OnnxGraph.Int("axis", -1)), v);           // (B, H, n, D)

        // Step 4: merge heads, output map.
        string merged = g.Reshape(g.Transpose(attended, 0, 2, 1, 3), -1, length, hd);                          // (B, n, H·D)
        return attention.Output is { } output ? Linear(merged, output) : Linear(Linear(merged, attention.Output1!), attention.Output2!);
    }

    /// <summary>(B, L, H·D) → (B, H, L, D).</summary>
    private string SplitHeads(string t, long rows) => g.Transpose(g.Reshape(t, -1, rows, options.Heads, options.EffectiveHeadWidth), 0, 2, 1, 3);

    /// <summary>E's weight over the first n columns: (K, n) for one group, (H, K, n) per head.</summary>
    private string SequenceWeight(SequenceProjection p)
        => Weight(p, "weight", () =>
        {
            var w = length == p.SequenceLength ? p.Weight : p.Weight.narrow(2, 0, length);   // slicing ≡ zero padding to N
            return p.Groups == 1 ? w[0] : w;
        });

    /// <summary>
    /// E x along the sequence axis: (K, n) or (H, K, n) @ (…, n, F) → (…, K, F). In int8 a single (K, n) matrix is
    /// applied as (xᵀ Eᵀ)ᵀ, so that E is the quantised right operand with one scale per projected position; a
    /// per-head E (H, K, n) stays float32.
    /// </summary>
    /// <param name="p">The projection.</param>
    /// <param name="x">(…, n, F).</param>
    /// <param name="batchAxes">How many axes precede (n, F): 1 for (B, n, C), 2 for (B, H, n, D).</param>
    private string SequenceMatMul(SequenceProjection p, string x, int batchAxes)
    {
        if (!int8 || p.Groups != 1) return g.MatMul(SequenceWeight(p), x);
        long[] swap = batchAxes == 1 ? new long[] { 0, 2, 1 } : new long[] { 0, 1, 3, 2 };
        string projected = Dense(g.Transpose(x, swap), p, "weight", () =>                        // (…, F, n) @ (n, K) → (…, F, K)
        {
            var w = length == p.SequenceLength ? p.Weight : p.Weight.narrow(2, 0, length);
            return w[0].t();
        });
        return g.Transpose(projected, swap);                                                       // (…, K, F)
    }

    /// <summary>Adds E's per-projected-position bias to y (…, K, F), if it has one.</summary>
    private string AddSequenceBias(string y, SequenceProjection p)
    {
        if (p.Bias is null) return y;
        string bias = Weight(p, "bias", () => (p.Groups == 1 ? p.Bias![0] : p.Bias!).unsqueeze(-1));     // (K, 1) or (H, K, 1)
        return g.Add(y, bias);
    }

    /// <summary>Per-head projection (B, H, n, D) → (B, H, K, D): a batched matrix product, or the convolution.</summary>
    private string Project(string x, SequenceProjection p)
    {
        if (p.IsSequenceLinear) return AddSequenceBias(SequenceMatMul(p, x, 2), p);   // (K, n) or (H, K, n) @ (B, H, n, D)
        int h = options.Heads, d = options.EffectiveHeadWidth, n = p.SequenceLength, k = p.ProjectedLength;
        int stride = n / k;
        string weight = Weight(p, "weight", () => p.Weight);
        string bias = Weight(p, "bias", () => p.Bias!);
        string xt;
        if (p.Groups == 1) xt = g.Transpose(g.Reshape(x, -1, length, d), 0, 2, 1);              // (B·H, D, n)
        else xt = g.Reshape(g.Transpose(x, 0, 1, 3, 2), -1, (long)h * d, length);             // (B, H·D, n)
        if (length < n)                                                                          // zero-padded to N, as the module does
            xt = g.Node("Pad", new[] { xt, g.Int64s(new long[] { 0, 0, 0, 0, 0, n - length }) });
        string y = g.Node("Conv", new[] { xt, weight, bias },
            OnnxGraph.Ints("kernel_shape", stride), OnnxGraph.Ints("strides", stride), OnnxGraph.Int("group", p.Groups == 1 ? 1 : h));   // (B·H, D, K) or (B, H·D, K)
        return g.Transpose(g.Reshape(y, -1, h, d, k), 0, 1, 3, 2);                              // (B, H, K, D)
    }

    /// <summary>(B, 1, 1, n) bool: the key takes part; a row with no real position keeps every key (as <see cref="KeyValueProjections.KeyMask"/>).</summary>
    private string KeyMask(string mask, string maskFloat)
    {
        string any = g.Node("ReduceMax", new[] { maskFloat }, OnnxGraph.Ints("axes", 1), OnnxGraph.Int("keepdims", 1));   // (B, 1)
        string empty = g.Node("Less", new[] { any, g.Float(0.5f) });
        return g.Unsqueeze(g.Node("Or", new[] { mask, empty }), 1, 2);
    }

    /// <summary>Mean over real positions: (B, n, W) → (B, W), a row without any counting as one.</summary>
    private string MaskedMean(string encoded, string maskColumn)
    {
        string sum = g.Node("ReduceSum", new[] { g.Mul(encoded, maskColumn), g.Int64s(new[] { 1L }) }, OnnxGraph.Int("keepdims", 0));   // (B, W)
        string count = g.Node("ReduceSum", new[] { maskColumn, g.Int64s(new[] { 1L }) }, OnnxGraph.Int("keepdims", 0));              // (B, 1)
        return g.Div(sum, g.Node("Max", new[] { count, g.Float(1f) }));
    }

    private string LayerNorm(string x, LayerNorm norm)
        => g.Node("LayerNormalization",
            new[] { x, Weight(norm, "weight", () => norm.weight!), Weight(norm, "bias", () => norm.bias!) },
            OnnxGraph.Int("axis", -1), OnnxGraph.FloatAttribute("epsilon", 1e-5f));   // TorchSharp's LayerNorm default

    /// <summary>x Wᵀ + b over the last axis.</summary>
    private string Linear(string x, Linear linear)
    {
        string y = Dense(x, linear, "weight", () => linear.weight!.t());
        return linear.bias is null ? y : g.Add(y, Weight(linear, "bias", () => linear.bias));
    }

    /// <summary>
    /// x @ W over the last axis, W (in, out) a weight: a float MatMul, or in int8 x quantised dynamically to uint8
    /// (one scale and zero point per call), W symmetric int8 per output column, int32 products scaled back to float:
    /// the pattern ONNX Runtime fuses into one DynamicQuantizeMatMul (a bias Add after it is fused too).
    /// </summary>
    private string Dense(string x, object module, string part, Func<Tensor> weight)
    {
        if (!int8) return g.MatMul(x, Weight(module, part, weight));
        var (quantised, scales) = QuantisedWeight(module, part, weight);
        string[] dq = g.Node("DynamicQuantizeLinear", new[] { x }, 3);                          // uint8 x, scale, zero point
        string product = g.Node("MatMulInteger", new[] { dq[0], quantised, dq[2] });            // int32 (…, out)
        return g.Mul(g.Cast(product, DataType.Float), g.Mul(dq[1], scales));                     // · (x scale · W scale per column)
    }

    /// <summary>W (in, out) as int8 in [−<see cref="Int8WeightLevels"/>, <see cref="Int8WeightLevels"/>] and one float scale per column.</summary>
    private (string Weight, string Scales) QuantisedWeight(object module, string part, Func<Tensor> weight)
    {
        if (written.TryGetValue((module, part), out var name)) return (name, written[(module, part + ".scale")]);
        var (values, rows, columns) = Floats(weight());
        var scales = new float[columns];
        for (int c = 0; c < columns; c++)
        {
            float max = 0;
            for (int r = 0; r < rows; r++) max = Math.Max(max, Math.Abs(values[(long)r * columns + c]));
            scales[c] = max > 0 ? max / Int8WeightLevels : 1f;   // an all-zero column stays zero with any scale
        }
        var quantised = new byte[values.Length];
        for (long i = 0; i < values.Length; i++)
        {
            double q = Math.Round(values[i] / scales[i % columns], MidpointRounding.ToEven);
            quantised[i] = unchecked((byte)(sbyte)Math.Clamp(q, -Int8WeightLevels, Int8WeightLevels));
        }
        written[(module, part + ".scale")] = g.Initializer(part + "_scale", scales);
        return (written[(module, part)] = g.Initializer(part + "_int8", DataType.Int8, new long[] { rows, columns }, quantised), written[(module, part + ".scale")]);
    }

    /// <summary>A 2-D tensor's float32 values (row-major) and shape.</summary>
    private static (float[] Values, int Rows, int Columns) Floats(Tensor matrix)
    {
        using var scope = NewDisposeScope();
        var cpu = matrix.detach().to_type(ScalarType.Float32).cpu().contiguous();
        return (cpu.data<float>().ToArray(), (int)cpu.shape[0], (int)cpu.shape[1]);
    }

    private string Weight(object module, string part, Func<Tensor> value)
    {
        if (written.TryGetValue((module, part), out var name)) return name;
        return written[(module, part)] = g.Initializer(part, value());
    }
}
