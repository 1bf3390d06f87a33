// The scoring app: loads the model zip saved by OnnxScoring.Train (an ML.NET pipeline whose Linformer runs in ONNX
// Runtime) with a new MLContext and no registration call, and scores the held-out mails. It references
// Linformer.MLNet.OnnxRuntime only: no libtorch is loaded, built or published.
//
//   dotnet run --project Examples/OnnxScoring/Scoring -- [--model spam-onnx.zip]
//       scores Examples/data/spam/test.tsv: accuracy, AUC, rows/s, a few predictions.
//   dotnet OnnxScoring.Scoring.dll --hex <model.zip> <data.idv> <column>,<column>...
//       prints every value of the columns (Single or vectors of Single) bit-exactly: "value <column> <row> <hex>..."
//       (the tests compare them with the TorchSharp model's).
using System.Diagnostics;
using System.Globalization;
using Linformer.MLNet.Examples;
using Microsoft.ML;
using Microsoft.ML.Data;

try
{
    if (args.Length == 4 && args[0] == "--hex") return PrintHex(args[1], args[2], args[3]);
    string model = args.Length == 2 && args[0] == "--model" ? args[1] : Path.Combine(AppContext.BaseDirectory, "spam-onnx.zip");
    if (!File.Exists(model))
    {
        Console.Error.WriteLine($"{model} not found: run Examples/OnnxScoring/Train first (it writes spam-onnx.zip next to this program), or pass --model <zip>.");
        return 66;
    }
    var ml = new MLContext();
    var loaded = ml.Model.Load(model, out _);
    var mails = SpamMail.Load(Path.Combine(AppContext.BaseDirectory, "data", "spam", "test.tsv"));
    var data = ml.Data.LoadFromEnumerable(mails);

    var clock = Stopwatch.StartNew();
    var scored = ml.Data.Cache(loaded.Transform(data));
    var metrics = ml.BinaryClassification.Evaluate(scored);   // reads every row once: the timed pass
    clock.Stop();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{mails.Count} test mails: accuracy {metrics.Accuracy:0.000}, AUC {metrics.AreaUnderRocCurve:0.000}, {mails.Count / clock.Elapsed.TotalSeconds:0} mails/s (tokens, Linformer in ONNX Runtime, SDCA)"));

    var engine = ml.Model.CreatePredictionEngine<SpamMail, Prediction>(loaded);
    foreach (var mail in mails.Take(3))
    {
        var p = engine.Predict(mail);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {(p.PredictedLabel ? "spam" : "ham "),-4} p = {p.Probability:0.000} (is {(mail.Label ? "spam" : "ham")}): {mail.Text[..Math.Min(60, mail.Text.Length)]}"));
    }
    Console.WriteLine(NativeLibraries());
    return 0;
}
catch (Exception ex)
{
    Console.Error.WriteLine($"error {ex.GetType().FullName}: {ex.Message}");
    return 2;
}

static int PrintHex(string modelPath, string dataPath, string columns)
{
    var ml = new MLContext();
    var model = ml.Model.Load(modelPath, out _);
    var output = model.Transform(ml.Data.LoadFromBinary(dataPath));
    foreach (var column in columns.Split(','))
    {
        var type = output.Schema[column].Type;
        Console.WriteLine($"schema {column} {type}");
        var values = type is VectorDataViewType
            ? output.GetColumn<float[]>(column).ToList()
            : output.GetColumn<float>(column).Select(v => new[] { v }).ToList();
        for (int row = 0; row < values.Count; row++)
            Console.WriteLine($"value {column} {row.ToString(CultureInfo.InvariantCulture)} " +
                string.Join(" ", values[row].Select(f => BitConverter.SingleToInt32Bits(f).ToString("X8", CultureInfo.InvariantCulture))));
    }
    (model as IDisposable)?.Dispose();
    Console.WriteLine(NativeLibraries());
    return 0;
}

// The torch and ONNX Runtime native libraries this process has loaded (Process.Modules lists the mapped files).
static string NativeLibraries() => "native libraries loaded: " + string.Join(", ", Process.GetCurrentProcess().Modules.Cast<ProcessModule>()
    .Select(m => m.ModuleName).Where(m => m.Contains("torch", StringComparison.OrdinalIgnoreCase) || m.Contains("onnxruntime", StringComparison.OrdinalIgnoreCase))
    .Distinct().Order(StringComparer.Ordinal));

internal sealed class Prediction
{
    public bool PredictedLabel { get; set; }
    public float Probability { get; set; }
}
