using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Linformer.MLNet.Examples;

/// <summary>
/// <c>--onnx-int8</c>: exports a fitted pipeline's Linformer encoder to ONNX in float32 and in int8
/// (<see cref="LinformerTransformer.ExportToOnnx(Stream, LinformerOnnxQuantization)"/>), computes the test rows' encodings
/// with ONNX Runtime, and evaluates the pipeline's steps after the encoder (the downstream trainer) on them, beside the
/// same evaluation on TorchSharp's encodings (docs/onnx.md, "int8").
/// </summary>
public static class OnnxEncoderCheck
{
    /// <summary>The switch that asks for the check.</summary>
    public const string Flag = "--onnx-int8";

    private const int BatchSize = 64;

    /// <summary>Runs the check and prints a table: accuracy, AUC and F1 of the downstream trainer per encoder runtime.</summary>
    /// <param name="ml">The example's context.</param>
    /// <param name="model">The fitted pipeline, with one Linformer transform and a binary classifier after it.</param>
    /// <param name="test">The test data, as the pipeline reads it.</param>
    /// <param name="labelColumn">The Boolean label column.</param>
    /// <param name="paddingId">The padding token id of a token model (its positions are masked out), or null.</param>
    public static void Run(MLContext ml, ITransformer model, IDataView test, string labelColumn, int? paddingId = null)
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
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            using var session = new InferenceSession(graph.ToArray(), options);
            watch.Restart();
            var features = Encode(session, input, linformer.InputColumnName, paddingId);
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

    /// <summary>The encoder's output for every row of <paramref name="input"/>, in batches, by ONNX Runtime.</summary>
    private static float[][] Encode(InferenceSession session, IDataView input, string column, int? paddingId)
    {
        var shape = session.InputMetadata["input"].Dimensions;   // (batch, N) ids or (batch, N, channels) floats
        int n = shape[1];
        var type = input.Schema[column].Type is VectorDataViewType vector ? vector.ItemType : input.Schema[column].Type;
        List<(long[]? Ids, float[]? Values)> rows = type == NumberDataViewType.Single
            ? input.GetColumn<float[]>(column).Select(v => ((long[]?)null, (float[]?)v)).ToList()
            : input.GetColumn<int[]>(column).Select(v => ((long[]?)v.Select(t => (long)t).ToArray(), (float[]?)null)).ToList();
        var output = new List<float[]>();
        for (int start = 0; start < rows.Count; start += BatchSize)
        {
            var batch = rows.Skip(start).Take(BatchSize).ToList();
            int b = batch.Count;
            var mask = new DenseTensor<bool>(batch.SelectMany(r => r.Ids is { } ids ? ids.Select(t => paddingId is not int pad || t != pad) : Enumerable.Repeat(true, n)).ToArray(), new[] { b, n });
            var tensor = batch[0].Ids is not null
                ? NamedOnnxValue.CreateFromTensor("input", new DenseTensor<long>(batch.SelectMany(r => r.Ids!).ToArray(), new[] { b, n }))
                : NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(batch.SelectMany(r => r.Values!).ToArray(), new[] { b, n, shape[2] }));
            using var results = session.Run(new[] { tensor, NamedOnnxValue.CreateFromTensor("mask", mask) });
            var features = results.Single(r => r.Name == "features").AsTensor<float>();
            int width = features.Dimensions[1];
            var flat = features.ToArray();
            for (int i = 0; i < b; i++) output.Add(flat.AsSpan(i * width, width).ToArray());
        }
        return output.ToArray();
    }

    private static BinaryClassificationMetrics Evaluate(MLContext ml, IReadOnlyList<ITransformer> after, bool[] labels, float[][] features,
        string featureColumn, string labelColumn)
    {
        var definition = SchemaDefinition.Create(typeof(EncodedRow));
        definition[nameof(EncodedRow.Features)].ColumnName = featureColumn;
        definition[nameof(EncodedRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features[0].Length);
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
