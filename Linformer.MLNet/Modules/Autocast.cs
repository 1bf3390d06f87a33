using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

/// <summary>
/// Mixed precision for the encoder, written out: TorchSharp 0.107 has no <c>torch.autocast</c>. Inside a scope opened
/// with <see cref="Enter"/> for <see cref="LinformerPrecision.BFloat16"/>, <see cref="Linear(Tensor, Tensor, Tensor?)"/>
/// and <see cref="MatMul"/> cast their operands to bfloat16 (as PyTorch's autocast does for its "lower precision"
/// ops); everything else stays float32 because each block hands its result back through <see cref="Float32"/>: the
/// residual stream, LayerNorm, the written-out softmax, pooling and heads. The casts are autograd ops, so gradients
/// reach the float32 weights as float32 (the master weights of mixed-precision training); bfloat16 has float32's
/// exponent range, so no loss scaling is needed. The scope is per thread, like TorchSharp's gradient mode.
/// </summary>
internal static class Autocast
{
    [ThreadStatic] private static bool lowPrecision;

    /// <summary>The type of the matrix products on this thread now: bfloat16 inside a bf16 scope, else float32.</summary>
    public static ScalarType MatrixType => lowPrecision ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>Runs the products of this thread in <paramref name="precision"/> until the returned scope is disposed.</summary>
    public static Scope Enter(LinformerPrecision precision)
    {
        var scope = new Scope(lowPrecision);
        lowPrecision = precision == LinformerPrecision.BFloat16;
        return scope;
    }

    /// <summary>Restores the previous precision of the thread.</summary>
    public readonly struct Scope(bool previous) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => lowPrecision = previous;
    }

    /// <summary><c>x Wᵀ + b</c> in <see cref="MatrixType"/>; the result is in that type.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
        => lowPrecision
            ? nn.functional.linear(To(x), To(weight), bias is null ? null : To(bias))
            : nn.functional.linear(x, weight, bias);

    /// <summary>A <see cref="TorchSharp.Modules.Linear"/> layer's map in <see cref="MatrixType"/>.</summary>
    public static Tensor Linear(Tensor x, Linear layer) => Linear(x, layer.weight!, layer.bias);

    /// <summary><c>a @ b</c> in <see cref="MatrixType"/>.</summary>
    public static Tensor MatMul(Tensor a, Tensor b) => lowPrecision ? matmul(To(a), To(b)) : matmul(a, b);

    /// <summary><paramref name="t"/> in <paramref name="like"/>'s type (for weights meeting an activation of either type).</summary>
    public static Tensor As(Tensor t, Tensor like) => t.dtype == like.dtype ? t : t.to_type(like.dtype);

    /// <summary><paramref name="t"/> as float32: itself when it already is.</summary>
    public static Tensor Float32(Tensor t) => t.dtype == ScalarType.Float32 ? t : t.to_type(ScalarType.Float32);

    private static Tensor To(Tensor t) => t.dtype == ScalarType.BFloat16 ? t : t.to_type(ScalarType.BFloat16);
}
