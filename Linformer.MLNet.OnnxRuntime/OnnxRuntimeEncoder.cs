using System.Globalization;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Linformer.MLNet.OnnxRuntime;

/// <summary>
/// Runs an exported Linformer graph (docs/onnx.md) in ONNX Runtime on the batches of the library's data view and row
/// mapper: one <c>Run</c> per batch, inputs and outputs bound to the batch's own arrays (no copies). Thread-safe (an
/// ONNX Runtime session serves concurrent runs); <see cref="Dispose"/> waits for the runs in flight, then frees the
/// session, and a later <see cref="Encode"/> throws <see cref="ObjectDisposedException"/>.
/// </summary>
internal sealed class OnnxRuntimeEncoder : ISequenceEncoder, IDisposable
{
    private static readonly string[] OutputsWithoutHead = [LinformerOnnxExporter.FeaturesName];
    private static readonly string[] OutputsWithHead = [LinformerOnnxExporter.FeaturesName, LinformerOnnxExporter.HeadName];
    private static readonly string[] InputNames = [LinformerOnnxExporter.InputName, LinformerOnnxExporter.MaskName];

    private readonly Type owner;
    private readonly InputBinding binding;
    private readonly InferenceSession session;
    private readonly object gate = new();
    private int inFlight;
    private bool disposed;

    /// <summary>Opens <paramref name="graph"/> in ONNX Runtime (every graph optimisation on) and checks that its inputs and outputs are those of the model it stands for.</summary>
    /// <exception cref="InvalidDataException">ONNX Runtime cannot load the graph, or its inputs or outputs differ from the model's.</exception>
    public OnnxRuntimeEncoder(Type owner, NetworkSpec spec, TransformerSettings settings, byte[] graph, string graphName)
    {
        this.owner = owner;
        binding = settings.Binding;
        Layout = TokenLayout.Of(spec);
        HeadOutput = spec.Head == HeadKind.None ? HeadOutput.None : settings.HeadOutput(spec.Head);
        FeatureSize = settings.OutputKind == LinformerOutputKind.Sequence ? spec.Encoder.SequenceLength * spec.Width : spec.Width;
        HeadSize = HeadOutput switch
        {
            HeadOutput.Probabilities => spec.Classes,
            HeadOutput.LogOddsAndProbability => 2,
            HeadOutput.Value => 1,
            _ => 0,
        };
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        try { session = new InferenceSession(graph, options); }
        catch (OnnxRuntimeException ex)
        {
            throw new InvalidDataException($"ONNX Runtime cannot load the Linformer graph ({graphName}): {ex.Message}", ex);
        }
        try { CheckInterface(spec, graphName); }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public TokenLayout Layout { get; }
    public HeadOutput HeadOutput { get; }
    public int FeatureSize { get; }
    public int HeadSize { get; }

    private void CheckInterface(NetworkSpec spec, string graphName)
    {
        int n = binding.SequenceLength;
        Check(session.InputMetadata, LinformerOnnxExporter.InputName, "input",
            binding.IsTokens ? TensorElementType.Int64 : TensorElementType.Float, binding.IsTokens ? [n] : [n, spec.InputChannels]);
        Check(session.InputMetadata, LinformerOnnxExporter.MaskName, "input", TensorElementType.Bool, [n]);
        Check(session.OutputMetadata, LinformerOnnxExporter.FeaturesName, "output", TensorElementType.Float, [FeatureSize]);
        if (HeadOutput != HeadOutput.None)
            Check(session.OutputMetadata, LinformerOnnxExporter.HeadName, "output", TensorElementType.Float, [HeadSize]);

        void Check(IReadOnlyDictionary<string, NodeMetadata> nodes, string name, string kind, TensorElementType type, int[] dimensions)
        {
            string expected = string.Create(CultureInfo.InvariantCulture, $"{type} (batch, {string.Join(", ", dimensions)})");
            if (!nodes.TryGetValue(name, out var node))
                throw new InvalidDataException($"The Linformer graph ({graphName}) has no {kind} '{name}': the model needs {kind} '{name}' of {expected}; the graph's {kind}s are {string.Join(", ", nodes.Keys.Select(k => $"'{k}'"))}.");
            var actual = node.IsTensor ? node.Dimensions : [];
            if (!node.IsTensor || node.ElementDataType != type || actual.Length != dimensions.Length + 1 || actual[0] > 0 || !actual.Skip(1).SequenceEqual(dimensions))
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"The Linformer graph ({graphName}) does not fit the model: its {kind} '{name}' is {(node.IsTensor ? node.ElementDataType.ToString() : node.OnnxValueType.ToString())} ({string.Join(", ", actual.Select(d => d > 0 ? d.ToString(CultureInfo.InvariantCulture) : "batch"))}), the model needs {expected}."));
        }
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the transformer that owns the session was disposed.</summary>
    public void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed), owner);

    /// <inheritdoc />
    public void Encode(SequenceBatch batch, float[] features, float[]? head)
    {
        int rows = batch.Count, n = binding.SequenceLength;
        if (rows == 0) return;
        lock (gate)
        {
            ThrowIfDisposed();
            inFlight++;
        }
        try
        {
            using var input = batch.Ids is not null
                ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Ids.AsMemory(0, rows * n), [rows, n])
                : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Values!.AsMemory(0, rows * binding.ValuesPerRow), [rows, n, binding.Channels]);
            using var mask = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Mask.AsMemory(0, rows * n), [rows, n]);
            bool withHead = HeadOutput != HeadOutput.None && head is not null;
            using var featuresOut = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, features.AsMemory(0, rows * FeatureSize), [rows, FeatureSize]);
            using var headOut = withHead ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, head!.AsMemory(0, rows * HeadSize), [rows, HeadSize]) : null;
            using var runOptions = new RunOptions();
            session.Run(runOptions, InputNames, [input, mask], withHead ? OutputsWithHead : OutputsWithoutHead,
                withHead ? [featuresOut, headOut!] : [featuresOut]);
        }
        finally
        {
            lock (gate)
            {
                if (--inFlight == 0) Monitor.PulseAll(gate);
            }
        }
    }

    /// <summary>Marks the encoder disposed, waits for the runs in flight on other threads, then frees the session.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            Volatile.Write(ref disposed, true);
            while (inFlight > 0) Monitor.Wait(gate);
        }
        session.Dispose();
    }
}
