// Public vocabulary of the ML.NET face: root namespace, file beside the training loop (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>The learning-rate schedule after warm-up.</summary>
public enum LearningRateDecay
{
    /// <summary>Constant learning rate after warm-up.</summary>
    None,
    /// <summary>Linear decay to zero at the last step.</summary>
    Linear,
    /// <summary>Cosine decay to zero at the last step.</summary>
    Cosine,
}
