// Loads an ML.NET model zip in this fresh process with a fresh MLContext and no registration call, runs it over
// float inputs, and prints the outputs bit-exactly.
//
//   dotnet ModelLoadHost.dll <model.zip> <probe-dir> <input-column> <output-column> <input bits (hex)>...
//
// Prints "type <loaded transformer type>", then one "transform <bits>" line per input (IDataView path) and one
// "predict <bits>" line per input (PredictionEngine path), bits as 8 hex digits of the float's IEEE 754 form.
// On failure prints "error <exception types, outermost first>: <innermost message>" to stderr and exits with 2.
//
// <probe-dir> stands in for an application's deps.json: ML.NET loads the model's loader assembly by its simple
// name with Assembly.Load, and in a test the loader lives in the test assembly, which this host does not
// reference. The handler below only tells the runtime where assembly files are; it registers nothing with ML.NET.
using System.Globalization;
using System.Runtime.Loader;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length < 4)
{
    Console.Error.WriteLine("usage: ModelLoadHost <model.zip> <probe-dir> <input-column> <output-column> <input bits (hex)>...");
    return 64;
}

var (modelPath, probeDirectory, inputColumn, outputColumn) = (args[0], args[1], args[2], args[3]);
var inputs = args.Skip(4).Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();

AssemblyLoadContext.Default.Resolving += (context, name) =>
{
    var candidate = Path.Combine(probeDirectory, name.Name + ".dll");
    return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
};

try
{
    var mlContext = new MLContext(seed: 1);
    var model = mlContext.Model.Load(modelPath, out _);
    Console.WriteLine("type " + model.GetType().FullName);

    var inputDefinition = SchemaDefinition.Create(typeof(FloatRow));
    inputDefinition[nameof(FloatRow.Value)].ColumnName = inputColumn;
    var outputDefinition = SchemaDefinition.Create(typeof(FloatRow));
    outputDefinition[nameof(FloatRow.Value)].ColumnName = outputColumn;

    var data = mlContext.Data.LoadFromEnumerable(inputs.Select(v => new FloatRow { Value = v }), inputDefinition);
    foreach (var value in model.Transform(data).GetColumn<float>(outputColumn))
        Console.WriteLine("transform " + Bits(value));

    // Not disposed: disposing a default PredictionEngine disposes the transformer it was made from.
    var engine = mlContext.Model.CreatePredictionEngine<FloatRow, FloatRow>(model, ignoreMissingColumns: true,
        inputSchemaDefinition: inputDefinition, outputSchemaDefinition: outputDefinition);
    foreach (var value in inputs)
        Console.WriteLine("predict " + Bits(engine.Predict(new FloatRow { Value = value }).Value));
    return 0;
}
catch (Exception ex)
{
    var chain = new List<Exception>();
    for (var e = ex; e is not null; e = e.InnerException) chain.Add(e);
    Console.Error.WriteLine($"error {string.Join(" > ", chain.Select(e => e.GetType().FullName))}: {chain[^1].Message.ReplaceLineEndings(" ")}");
    return 2;
}

static string Bits(float value) => BitConverter.SingleToInt32Bits(value).ToString("X8", CultureInfo.InvariantCulture);

/// <summary>One float column; its name is set per run through a <see cref="SchemaDefinition"/>.</summary>
internal sealed class FloatRow
{
    public float Value { get; set; }
}
