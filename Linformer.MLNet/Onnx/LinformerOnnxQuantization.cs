// Public vocabulary of the ML.NET face: it lives in the root namespace (one `using Linformer.MLNet;`), while the file
// sits with the exporter that implements it, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>The number format of the dense maps in a graph written by <see cref="LinformerTransformer.ExportToOnnx(Stream, LinformerOnnxQuantization)"/>.</summary>
public enum LinformerOnnxQuantization
{
    /// <summary>Everything in float32: ONNX Runtime's outputs are within 1e-5 of the transformer's.</summary>
    None,

    /// <summary>
    /// The weights of every dense map (input map, embedding projections, Q/K/V, E/F when one matrix serves every head,
    /// output maps, feed-forward, head) in int8, symmetric per output channel, and their inputs quantised dynamically
    /// to uint8 (<c>DynamicQuantizeLinear</c> + <c>MatMulInteger</c>); embeddings, LayerNorm, attention scores,
    /// softmax and pooling stay float32. Smaller and faster in ONNX Runtime, with outputs within the bound docs/onnx.md
    /// states.
    /// </summary>
    Int8,
}
