using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Examples;

/// <summary>
/// <c>--onnx-int8</c>: exports a fitted pipeline's Linformer encoder to ONNX in float32 and in int8
/// (<see cref="LinformerTransformer.ExportToOnnx(Stream, LinformerOnnxQuantization)"/>), computes the test rows' encodings
/// with ONNX Runtime (the Linformer.MLNet.OnnxRuntime transform), and evaluates the pipeline's steps after the encoder (the downstream trainer) on them, beside the
/// same evaluation on TorchSharp's encodings (docs/onnx.md, "int8").
/// </summary>
public static class OnnxEncoderCheck
{
    /// <summary>The switch that asks for the check.</summary>
    public const string Flag = "--onnx-int8";

    /// <summary>Runs the check and prints a table: accuracy, AUC and F1 of the downstream trainer per encoder runtime.</summary>
    /// <param name="ml">The example's context.</param>
    /// <param name="model">The fitted pipeline, with one Linformer transform and a binary classifier after it.</param>
    /// <param name="test">The test data, as the pipeline reads it.</param>
    /// <param name="labelColumn">The Boolean label column.</param>
    public static void Run(MLContext ml, ITransformer model, IDataView test, string labelColumn)
    {
        var steps = Flatten(model).ToList();
        int at = steps.FindIndex(t => t is LinformerTransformer);
        if (at < 0) throw new ArgumentException("The pipeline has no Linformer transform.", nameof(model));
        var linformer = (LinformerTransformer)steps[at];
        IDataView input = test;
        foreach (var step in steps.Take(at)) input = step.Transform(input);
        var after = steps.Skip(at + 1).ToList();
        var labels = input.GetColumn<bool>(labelColumn).ToArray();

        var watch = Stopwatch.StartNew();
        var reference = linformer.Transform(input).GetColumn<float[]>(linformer.OutputColumnName).ToArray();
        double referenceSeconds = watch.Elapsed.TotalSeconds;

        Console.WriteLine();
        Console.WriteLine($"== encoder scored by ONNX Runtime ({Flag}) on {labels.Length} test rows ==");
        Console.WriteLine($"{"encoder",-26} {"accuracy",9} {"AUC",7} {"F1",7} {"max |Δ features|",17} {"encode",8}");
        var baseline = Evaluate(ml, after, labels, reference, linformer.OutputColumnName, labelColumn);
        Print("TorchSharp (Transform)", baseline, 0, referenceSeconds);
        var accuracy = new Dictionary<LinformerOnnxQuantization, double>();
        foreach (var quantization in new[] { LinformerOnnxQuantization.None, LinformerOnnxQuantization.Int8 })
        {
            using var graph = new MemoryStream();
            linformer.ExportToOnnx(graph, quantization);
            watch.Restart();
            var features = Encode(linformer, graph.ToArray(), input);
            double seconds = watch.Elapsed.TotalSeconds;
            double maxDifference = reference.Zip(features, (a, b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max()).Max();
            var metrics = Evaluate(ml, after, labels, features, linformer.OutputColumnName, labelColumn);
            accuracy[quantization] = metrics.Accuracy;
            Print(quantization == LinformerOnnxQuantization.None ? "ONNX Runtime fp32" : "ONNX Runtime int8", metrics, maxDifference, seconds);
        }
        double delta = accuracy[LinformerOnnxQuantization.Int8] - accuracy[LinformerOnnxQuantization.None];
        long fp32Size = Size(linformer, LinformerOnnxQuantization.None), int8Size = Size(linformer, LinformerOnnxQuantization.Int8);
        Console.WriteLine($"int8 - fp32 accuracy: {100 * delta:+0.0;-0.0;0.0} points; ONNX graph {fp32Size / 1024.0:F0} KiB fp32, {int8Size / 1024.0:F0} KiB int8");
        Console.WriteLine("encode: ONNX Runtime's or Transform's time for the test rows' encodings (indicative)");
    }

    private static long Size(LinformerTransformer linformer, LinformerOnnxQuantization quantization)
    {
        using var stream = new MemoryStream();
        linformer.ExportToOnnx(stream, quantization);
        return stream.Length;
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer model)
        => model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { model };

    /// <summary>
    /// The encoder's output for every row of <paramref name="input"/> by ONNX Runtime: the graph in <paramref name="graph"/>
    /// behind the Linformer transform's own columns (Linformer.MLNet.OnnxRuntime), which reads the rows (text, tokens,
    /// floats, padding and mask) exactly as the TorchSharp transform does.
    /// </summary>
    private static float[][] Encode(LinformerTransformer linformer, byte[] graph, IDataView input)
    {
        string path = Path.Combine(Path.GetTempPath(), $"linformer-onnx-check-{Environment.ProcessId}.onnx");
        try
        {
            File.WriteAllBytes(path, graph);
            using var onnx = linformer.ToOnnxRuntime(path);
            return onnx.Transform(input).GetColumn<float[]>(linformer.OutputColumnName).ToArray();
        }
        finally { File.Delete(path); }
    }

    private static BinaryClassificationMetrics Evaluate(MLContext ml, IReadOnlyList<ITransformer> after, bool[] labels, float[][] features,
        string featureColumn, string labelColumn)
    {
        var definition = SchemaDefinition.Create(typeof(EncodedRow));
        var featureDefinition = definition[nameof(EncodedRow.Features)];   // the indexer finds columns by their current name
        featureDefinition.ColumnType = new VectorDataViewType(NumberDataViewType.Single, features[0].Length);
        featureDefinition.ColumnName = featureColumn;
        definition[nameof(EncodedRow.Label)].ColumnName = labelColumn;
        IDataView data = ml.Data.LoadFromEnumerable(labels.Zip(features, (l, f) => new EncodedRow { Label = l, Features = f }).ToList(), definition);
        foreach (var step in after) data = step.Transform(data);
        return ml.BinaryClassification.Evaluate(data, labelColumnName: labelColumn);
    }

    private static void Print(string name, BinaryClassificationMetrics m, double maxDifference, double seconds)
        => Console.WriteLine($"{name,-26} {m.Accuracy,9:F3} {m.AreaUnderRocCurve,7:F3} {m.F1Score,7:F3} {maxDifference,17:E2} {seconds,7:F2}s");

    private sealed class EncodedRow
    {
        public bool Label { get; set; }
        public float[] Features { get; set; } = [];
    }
}
