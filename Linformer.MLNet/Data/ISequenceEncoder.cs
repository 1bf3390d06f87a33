using Linformer.MLNet.Model;

namespace Linformer.MLNet.Data;

/// <summary>
/// What the lazy data view and the row mapper (<see cref="OutputBinding"/>) need from the engine that encodes a
/// batch: the sizes of its outputs and one call per batch. <see cref="BatchEncoder"/> runs the TorchSharp network;
/// the Linformer.MLNet.OnnxRuntime package runs the exported graph in ONNX Runtime behind the same columns.
/// </summary>
internal interface ISequenceEncoder
{
    /// <summary>The rows of the network's token embedding: the input's ids and the reserved tokens.</summary>
    TokenLayout Layout { get; }

    /// <summary>What the head's output holds per row.</summary>
    HeadOutput HeadOutput { get; }

    /// <summary>Floats per row of the output column.</summary>
    int FeatureSize { get; }

    /// <summary>Floats per row of the head's output (see <see cref="HeadOutput"/>).</summary>
    int HeadSize { get; }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the owner was disposed.</summary>
    void ThrowIfDisposed();

    /// <summary>Encodes the batch into <paramref name="features"/> (B·FeatureSize) and, if the head is emitted, <paramref name="head"/> (B·HeadSize).</summary>
    void Encode(SequenceBatch batch, float[] features, float[]? head);
}
