// Bring PyTorch weights: a model trained with the Python library linformer-pytorch becomes an ML.NET model zip.
//
// In Python (once):   safetensors.torch.save_file(model.state_dict(), "weights.safetensors")
// Here: the same constructor arguments (case.json's kwargs) + that file → a Linformer transform with Epochs = 0 and
// PyTorchWeightsPath → Fit (loads, does not train) → mlContext.Model.Save → Model.Load → Transform. The recorded
// input (io.safetensors) goes through the loaded model and its output is compared with what PyTorch computed.
//
//   dotnet run --project Examples/PyTorchWeights [-- <case-folder>] [--output <folder>]
//
// <case-folder>: a folder with case.json, weights.safetensors and io.safetensors (default: the bundled
// encoder-layerwise-gelu case; the tests' Fixtures/linformer-pytorch has three more). --output: where the zip goes.
using System.Text.Json;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

var arguments = new ExampleArgs(args);
string folder = Path.GetFullPath(arguments.Positional("--output").FirstOrDefault() ?? ExampleData.Folder(Path.Combine("linformer-pytorch", "encoder-layerwise-gelu")));
string outputFolder = arguments.Value("--output") ?? AppContext.BaseDirectory;
string caseName = Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));

// 1. The Python constructor arguments, translated by the library (the seed's defaults for omitted ones).
using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
string className = caseJson.RootElement.GetProperty("class").GetString()!;
var kwargs = caseJson.RootElement.GetProperty("kwargs").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
LinformerEncoderOptions seed = PyTorchImport.OptionsFromSeedArguments(className, kwargs);
Console.WriteLine($"case: {caseName} — linformer-pytorch {className}({string.Join(", ", kwargs.Select(kv => $"{kv.Key}={kv.Value}"))})");
if (seed.OutputIntermediateSize is not null || seed.EmbeddingSize is not null)
    throw new NotSupportedException("w_o_intermediate_dim and emb_dim have no ML.NET transform option; import such a model with PyTorchImport.LoadEncoder instead.");

// 2. The recorded input and output.
var io = SafeTensors.Read(Path.Combine(folder, "io.safetensors"));
try
{
    Tensor input = io["input"], expected = io["output"];                 // input (B, n, C) floats or (B, n) int64 tokens; output (B, n, C)
    io.TryGetValue("input_mask", out var inputMask);                     // (B, n) true = real position, or absent
    int rows = (int)input.shape[0], n = seed.SequenceLength, c = seed.ModelWidth;
    bool tokens = seed.VocabularySize is not null;
    var ml = new MLContext(seed: 1);
    IDataView data = Rows(ml, input, inputMask, tokens, n, c);
    Console.WriteLine($"input: {rows} rows, column Input {data.Schema["Input"].Type}{(inputMask is null ? "" : ", column Mask " + data.Schema["Mask"].Type)}");

    // 3. The ML.NET pipeline: Epochs = 0 + PyTorchWeightsPath, settings as in Python.
    var options = new LinformerEstimator.Options
    {
        InputColumnName = "Input", OutputColumnName = "Encoded", MaskColumnName = inputMask is null ? null : "Mask",
        OutputKind = LinformerOutputKind.Sequence,                       // the whole (n, C) output, as PyTorch returns it
        SequenceLength = n, Channels = tokens ? 0 : c, VocabularySize = seed.VocabularySize ?? 0,
        ModelWidth = c, ProjectedLength = seed.ProjectedLength, Heads = seed.Heads, Depth = seed.Depth, HeadWidth = seed.HeadWidth,
        FeedForwardSize = seed.FeedForwardSize, Activation = seed.Activation, Sharing = seed.Sharing,
        ProjectionMethod = seed.ProjectionMethod, ProjectedLengthReductionPerLayer = seed.ProjectedLengthReductionPerLayer,
        FullAttention = seed.FullAttention, IncludeFeedForward = seed.IncludeFeedForward, NormPlacement = seed.NormPlacement,
        PositionEmbedding = seed.PositionEmbedding, Dropout = seed.Dropout, FeedForwardDropout = seed.FeedForwardDropout,
        Epochs = 0, PyTorchWeightsPath = Path.Combine(folder, "weights.safetensors"),
    };
    using var fitted = ml.Transforms.Linformer(options).Fit(data);
    Console.WriteLine($"imported: {fitted.ParameterCount:N0} parameters from weights.safetensors");

    Directory.CreateDirectory(outputFolder);
    string modelPath = Path.GetFullPath(Path.Combine(outputFolder, $"{caseName}.zip"));
    ml.Model.Save(fitted, data.Schema, modelPath);
    var loaded = ml.Model.Load(modelPath, out _);
    try
    {
        // 4. The recorded input through the loaded model, against PyTorch's output.
        var encoded = loaded.Transform(data).GetColumn<float[]>("Encoded").ToArray();
        double maxDifference = 0;
        for (int i = 0; i < rows; i++)
        {
            var reference = expected[i].flatten().data<float>().ToArray();
            for (int j = 0; j < reference.Length; j++) maxDifference = Math.Max(maxDifference, Math.Abs(reference[j] - encoded[i][j]));
        }
        Console.WriteLine($"output: {rows} × Vector<Single, {encoded[0].Length}> = ({rows}, {n}, {c}), as PyTorch's");
        Console.WriteLine($"max |ML.NET (saved and loaded) - PyTorch| = {maxDifference:E2} over {rows * n * c:N0} values");
        Console.WriteLine($"model: {modelPath} ({new FileInfo(modelPath).Length / 1024.0:F0} KiB)");
        return maxDifference < 1e-6 ? 0 : 1;
    }
    finally { (loaded as IDisposable)?.Dispose(); }
}
finally
{
    foreach (var t in io.Values) t.Dispose();
}

// Rows for ML.NET from the recorded tensors, with the vector sizes set at run time through a SchemaDefinition.
static IDataView Rows(MLContext ml, Tensor input, Tensor? mask, bool tokens, int n, int c)
{
    int b = (int)input.shape[0];
    if (tokens)
    {
        var rows = Enumerable.Range(0, b).Select(i => new TokenRow { Input = input[i].data<long>().ToArray(), Mask = MaskOf(mask, i, n) }).ToList();
        var schema = SchemaDefinition.Create(typeof(TokenRow));
        schema["Input"].ColumnType = new VectorDataViewType(NumberDataViewType.Int64, n);
        schema["Mask"].ColumnType = new VectorDataViewType(BooleanDataViewType.Instance, n);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
    else
    {
        var rows = Enumerable.Range(0, b).Select(i => new FloatRow { Input = input[i].flatten().data<float>().ToArray(), Mask = MaskOf(mask, i, n) }).ToList();
        var schema = SchemaDefinition.Create(typeof(FloatRow));
        schema["Input"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n * c);   // (n, C) row-major
        schema["Mask"].ColumnType = new VectorDataViewType(BooleanDataViewType.Instance, n);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}

static bool[] MaskOf(Tensor? mask, int row, int n) => mask is null ? Enumerable.Repeat(true, n).ToArray() : mask[row].data<bool>().ToArray();

internal sealed class FloatRow
{
    public float[] Input { get; set; } = [];
    public bool[] Mask { get; set; } = [];
}

internal sealed class TokenRow
{
    public long[] Input { get; set; } = [];
    public bool[] Mask { get; set; } = [];
}
