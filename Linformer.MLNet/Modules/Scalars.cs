using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Modules;

/// <summary>
/// The constant numbers the library passes to libtorch, each one immutable <see cref="Scalar"/> made once. A bare
/// number becomes a temporary Scalar that the garbage collector may finalise during the native call; a static one is
/// reachable for the life of the process and never finalised (docs/hardening.md, "Numbers passed to libtorch").
/// </summary>
internal static class Scalars
{
    /// <summary>0 (float): masked rows are zeroed.</summary>
    public static readonly Scalar Zero = 0f.ToScalar();

    /// <summary>1 (float).</summary>
    public static readonly Scalar One = 1f.ToScalar();

    /// <summary>−∞ (float): scores of keys excluded from the softmax.</summary>
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();
}
