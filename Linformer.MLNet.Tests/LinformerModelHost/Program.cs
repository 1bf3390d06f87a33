// Loads Linformer model zips in this fresh process, with a new MLContext and no registration call, encodes rows
// and prints every output float bit-exactly.
//
//   dotnet LinformerModelHost.dll <model.zip> <rows.txt> <sequence length>
//       rows.txt holds one row per line, token ids separated by commas (an Int32 column "Tokens"). Prints one line
//       per row: "row <hex bits>..." of the "Features" column.
//
//   dotnet LinformerModelHost.dll <jobs.txt>
//       jobs.txt holds one job per line: "<model.zip>|<data.idv>|<column>,<column>...", the data an ML.NET binary
//       IDataView (any column types: Int32, Int64 or Key tokens, floats, masks). For each job prints "job <index>",
//       then per output column "schema <column> <type>" and one "value <column> <row> <hex bits>..." line per row.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length == 1) return RunJobs(args[0]);
if (args.Length != 3)
{
    Console.Error.WriteLine("usage: LinformerModelHost <model.zip> <rows.txt> <sequence length> | LinformerModelHost <jobs.txt>");
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
        Console.WriteLine("row " + Hex(features));
    return 0;
}
catch (Exception ex)
{
    Console.Error.WriteLine($"error {ex.GetType().FullName}: {ex.Message}");
    return 2;
}

static int RunJobs(string jobsPath)
{
    var jobs = File.ReadAllLines(jobsPath).Where(l => l.Length > 0).ToList();
    for (int index = 0; index < jobs.Count; index++)
    {
        try
        {
            var parts = jobs[index].Split('|');
            if (parts.Length != 3) throw new FormatException($"job {index}: expected '<model.zip>|<data.idv>|<columns>', got '{jobs[index]}'.");
            var ml = new MLContext();
            var model = ml.Model.Load(parts[0], out _);
            var output = model.Transform(ml.Data.LoadFromBinary(parts[1]));
            Console.WriteLine($"job {index}");
            foreach (var column in parts[2].Split(','))
            {
                var type = output.Schema[column].Type;
                Console.WriteLine($"schema {column} {type}");
                var values = type is VectorDataViewType
                    ? output.GetColumn<float[]>(column).ToList()
                    : output.GetColumn<float>(column).Select(v => new[] { v }).ToList();
                for (int row = 0; row < values.Count; row++)
                    Console.WriteLine($"value {column} {row.ToString(CultureInfo.InvariantCulture)} {Hex(values[row])}");
            }
            (model as IDisposable)?.Dispose();
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"error in job {index} {ex.GetType().FullName}: {ex.Message}");
            return 2;
        }
    }
    return 0;
}

static string Hex(float[] values)
    => string.Join(" ", values.Select(f => BitConverter.SingleToInt32Bits(f).ToString("X8", CultureInfo.InvariantCulture)));

internal sealed class TokenRow
{
    public int[] Tokens { get; set; } = Array.Empty<int>();
}
