using Linformer.MLNet.Persistence;

namespace Linformer.MLNet;

/// <summary>Turns a fitted <see cref="LinformerTransformer"/> into one that scores with ONNX Runtime.</summary>
public static class LinformerOnnxRuntimeExtensions
{
    /// <summary>
    /// Exports <paramref name="transformer"/>'s encoder (<see cref="LinformerTransformer.ExportToOnnx(Stream)"/>, float32)
    /// and returns a transformer that runs that graph in ONNX Runtime, with the same input and output columns. Save it
    /// (or a chain holding it) with <c>mlContext.Model.Save</c>; an app that loads the zip needs this package and
    /// ONNX Runtime, not libtorch.
    /// </summary>
    /// <param name="transformer">The fitted Linformer transformer; it stays usable and is not owned by the result.</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    /// <exception cref="NotSupportedException">The model encodes long rows as windows (<see cref="LinformerLongInputs.Windows"/>), whose average the graph of one window cannot give.</exception>
    public static LinformerOnnxTransformer ToOnnxRuntime(this LinformerTransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        using var stream = new MemoryStream();
        transformer.ExportToOnnx(stream);
        return new LinformerOnnxTransformer(transformer.Spec, transformer.Settings, stream.ToArray(), "exported by ExportToOnnx");
    }

    /// <summary>
    /// Returns a transformer that runs the ONNX graph in <paramref name="onnxPath"/>, exported from
    /// <paramref name="transformer"/> (for instance with another export option), with <paramref name="transformer"/>'s
    /// input and output columns. The graph's inputs and outputs are checked against the model (names, element types,
    /// shapes); its weights are taken as they are.
    /// </summary>
    /// <param name="transformer">The fitted Linformer transformer the graph was exported from.</param>
    /// <param name="onnxPath">The ONNX file.</param>
    /// <exception cref="InvalidDataException">ONNX Runtime cannot load the file, or its inputs or outputs are not the model's.</exception>
    /// <exception cref="NotSupportedException">The model encodes long rows as windows (<see cref="LinformerLongInputs.Windows"/>), whose average the graph of one window cannot give.</exception>
    public static LinformerOnnxTransformer ToOnnxRuntime(this LinformerTransformer transformer, string onnxPath)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        ArgumentException.ThrowIfNullOrEmpty(onnxPath);
        _ = transformer.OutputSize;   // throws ObjectDisposedException for a disposed transformer
        return new LinformerOnnxTransformer(transformer.Spec, transformer.Settings, File.ReadAllBytes(onnxPath), $"file '{onnxPath}'");
    }
}
