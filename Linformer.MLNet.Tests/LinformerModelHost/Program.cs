// Loads a Linformer model zip in this fresh process, with a new MLContext and no registration call, encodes
// token rows and prints every output float bit-exactly.
//
//   dotnet LinformerModelHost.dll <model.zip> <rows.txt> <sequence length>
//
// rows.txt holds one row per line, token ids separated by commas. Prints one line per row: "row <hex bits>...".
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: LinformerModelHost <model.zip> <rows.txt> <sequence length>");
    return 64;
}
int n = int.Parse(args[2], CultureInfo.InvariantCulture);
var rows = File.ReadAllLines(args[1]).Where(l => l.Length > 0)
    .Select(l => new TokenRow { Tokens = l.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray() }).ToList();
try
{
    var ml = new MLContext();
    var model = ml.Model.Load(args[0], out _);
    var definition = SchemaDefinition.Create(typeof(TokenRow));
    definition[nameof(TokenRow.Tokens)].ColumnType = new VectorDataViewType(NumberDataViewType.Int32, n);
    var data = ml.Data.LoadFromEnumerable(rows, definition);
    foreach (var features in model.Transform(data).GetColumn<float[]>("Features"))
        Console.WriteLine("row " + string.Join(" ", features.Select(f => BitConverter.SingleToInt32Bits(f).ToString("X8", CultureInfo.InvariantCulture))));
    return 0;
}
catch (Exception ex)
{
    Console.Error.WriteLine($"error {ex.GetType().FullName}: {ex.Message}");
    return 2;
}

internal sealed class TokenRow
{
    public int[] Tokens { get; set; } = Array.Empty<int>();
}
