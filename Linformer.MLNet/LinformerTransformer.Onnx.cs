using System.Globalization;
using Linformer.MLNet.Onnx;
using Linformer.MLNet.Persistence;

namespace Linformer.MLNet;

public sealed partial class LinformerTransformer
{
    /// <summary>
    /// Writes the fitted encoder as one ONNX graph (opset 17, float32, dynamic batch axis): embeddings or the float
    /// input map, every layer, the pooling of the output column and, when the transformer emits them, the head's values.
    /// Inputs <c>input</c> (int64 token ids (batch, N), or float (batch, N, channels)) and <c>mask</c> (bool (batch, N),
    /// true = real position); outputs <c>features</c> (batch, <see cref="OutputSize"/>) and, with a head, <c>head</c>.
    /// See docs/onnx.md.
    /// </summary>
    /// <param name="stream">Where the model is written; it stays open.</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public void ExportToOnnx(Stream stream) => ExportToOnnx(stream, LinformerOnnxQuantization.None);

    /// <summary>
    /// Writes the fitted encoder as one ONNX graph, as <see cref="ExportToOnnx(Stream)"/> does, with its dense maps in
    /// float32 or int8 (<see cref="LinformerOnnxQuantization.Int8"/>: weights per output channel, inputs quantised
    /// dynamically; same inputs and outputs; docs/onnx.md states the output bound).
    /// </summary>
    /// <param name="stream">Where the model is written; it stays open.</param>
    /// <param name="quantization">The number format of the dense maps.</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public void ExportToOnnx(Stream stream, LinformerOnnxQuantization quantization)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("The stream must be writable.", nameof(stream));
        ThrowIfUndefined(quantization);
        var model = encoder.WhileAlive(() => LinformerOnnxExporter.Export(network, settings.OutputKind, encoder.HeadOutput, quantization: quantization));
        LinformerOnnxExporter.Write(model, stream);
    }

    /// <summary>Writes the fitted encoder as an ONNX file; see <see cref="ExportToOnnx(Stream)"/>.</summary>
    /// <param name="path">The file to write (replaced if it exists; written to a temporary file first, so a failure leaves no partial file).</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public void ExportToOnnx(string path) => ExportToOnnx(path, LinformerOnnxQuantization.None);

    /// <summary>Writes the fitted encoder as an ONNX file; see <see cref="ExportToOnnx(Stream, LinformerOnnxQuantization)"/>.</summary>
    /// <param name="path">The file to write (replaced if it exists; written to a temporary file first, so a failure leaves no partial file).</param>
    /// <param name="quantization">The number format of the dense maps.</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public void ExportToOnnx(string path, LinformerOnnxQuantization quantization)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ThrowIfDisposed();
        ThrowIfUndefined(quantization);
        AtomicFile.Write(path, stream => ExportToOnnx(stream, quantization));
    }

    private static void ThrowIfUndefined(LinformerOnnxQuantization quantization)
    {
        if (!Enum.IsDefined(quantization))
            throw new ArgumentOutOfRangeException(nameof(quantization), quantization, string.Create(CultureInfo.InvariantCulture,
                $"The quantization must be {nameof(LinformerOnnxQuantization.None)} or {nameof(LinformerOnnxQuantization.Int8)}; got {(int)quantization}."));
    }
}
