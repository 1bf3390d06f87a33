// Public vocabulary of the ML.NET face: it lives in the root namespace (one `using Linformer.MLNet;`), while the file
// sits with the model that implements it, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>What the encoder's output column holds.</summary>
public enum LinformerOutputKind
{
    /// <summary>The mean of the encoding over real (unpadded) positions: <c>Vector&lt;Single, C&gt;</c>.</summary>
    MeanPooled,
    /// <summary>The encoding of the first position: <c>Vector&lt;Single, C&gt;</c>.</summary>
    FirstPosition,
    /// <summary>The whole encoded sequence, row-major (N, C): <c>Vector&lt;Single, N·C&gt;</c>.</summary>
    Sequence,
}
