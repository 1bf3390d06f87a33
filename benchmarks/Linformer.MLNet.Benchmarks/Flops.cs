using Linformer.MLNet.Modules;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// FLOPs of one encoder layer's forward, counting matrix products only (2 FLOPs per multiply–add). With batch B,
/// length N, width C = H·D, projected length k, feed-forward width F:
/// <code>
/// Linformer, layerwise (one E = F shared, input projected first):
///   Q map 2NC² + E·X 2kNC + K,V maps on k rows 4kC² + QKᵀ 2NkC + PV 2NkC + output map 2NC² + FF 4NCF
///   = 4NC² + 6NkC + 4kC² + 4NCF
/// Linformer, none (E_i, F_i per head, applied to K_i, V_i):
///   QKV maps 6NC² + E_i·K_i and F_i·V_i 4kNC + QKᵀ 2NkC + PV 2NkC + output map 2NC² + FF 4NCF
///   = 8NC² + 8NkC + 4NCF
/// Full attention (ours fused, and nn.TransformerEncoderLayer):
///   QKV maps 6NC² + QKᵀ 2N²C + PV 2N²C + output map 2NC² + FF 4NCF = 8NC² + 4N²C + 4NCF
/// </code>
/// all times B. Softmax, GELU, LayerNorm, biases and residual adds are left out (elementwise: O(N·k·H) or
/// O(N·C), a few percent at most). A training step is counted as 3 × forward (backward: two products per forward
/// product); the fused attention's backward also recomputes QKᵀ, so its real count is higher.
/// </summary>
internal static class Flops
{
    public static double Forward(ModelSpec model, int n, RunProfile profile)
    {
        double b = profile.Batch, c = profile.Channels, f = profile.FeedForward, k = model.ProjectedLength, nn = n;
        double perSequence = model.Kind switch
        {
            ModelKind.Linformer when model.Sharing == ParameterSharing.Layerwise
                => 4 * nn * c * c + 6 * nn * k * c + 4 * k * c * c + 4 * nn * c * f,
            ModelKind.Linformer when model.Sharing == ParameterSharing.None
                => 8 * nn * c * c + 8 * nn * k * c + 4 * nn * c * f,
            ModelKind.Linformer => throw new NotSupportedException($"No FLOP formula for sharing {model.Sharing}."),
            _ => 8 * nn * c * c + 4 * nn * nn * c + 4 * nn * c * f,
        };
        return b * perSequence;
    }

    public static double Step(ModelSpec model, int n, RunProfile profile, Mode mode)
        => Forward(model, n, profile) * (mode == Mode.Training ? 3 : 1);

    /// <summary>An s × s by s × s matrix product.</summary>
    public static double Matmul(int s) => 2.0 * s * s * s;

    /// <summary>The rate of <paramref name="flops"/> done in <paramref name="ms"/> milliseconds.</summary>
    public static double GflopPerSecond(double flops, double ms) => flops / (ms * 1e-3) / 1e9;
}
