// Command-line tools for Linformer.MLNet.
//
//   verify <case-folder> [--tolerance 1e-4]
//       Rebuilds a linformer-pytorch model from a recorded case (case.json, weights.safetensors,
//       io.safetensors), runs the recorded input in eval mode and prints max_abs_diff=<value>.
//       Exit code 0 when the difference is within the tolerance, 1 when not, 2 for bad usage or input.
using System.Globalization;
using Linformer.MLNet.Cli;

return Cli.Run(args);

internal static class Cli
{
    private const string Usage = "usage: linformer-mlnet verify <case-folder> [--tolerance 1e-4]";

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] != "verify")
        {
            Console.Error.WriteLine($"unknown command '{args[0]}'\n{Usage}");
            return 2;
        }
        string? folder = null;
        double tolerance = 1e-4;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--tolerance")
            {
                if (i + 1 >= args.Length || !double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out tolerance) || tolerance < 0)
                {
                    Console.Error.WriteLine($"--tolerance needs a non-negative number\n{Usage}");
                    return 2;
                }
                i++;
            }
            else if (folder is null) folder = args[i];
            else
            {
                Console.Error.WriteLine($"unexpected argument '{args[i]}'\n{Usage}");
                return 2;
            }
        }
        if (folder is null)
        {
            Console.Error.WriteLine($"missing <case-folder>\n{Usage}");
            return 2;
        }
        try
        {
            using var reference = PyTorchReferenceCase.Load(folder);
            double diff = reference.MaxAbsoluteDifference();
            Console.WriteLine($"case={Path.GetFileName(Path.TrimEndingDirectorySeparator(folder))} class={reference.ClassName} parameters={reference.Encoder.ParameterCount}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"max_abs_diff={diff:E6}"));
            bool ok = diff <= tolerance;
            Console.WriteLine(ok ? $"OK (tolerance {tolerance.ToString(CultureInfo.InvariantCulture)})" : $"FAILED: exceeds tolerance {tolerance.ToString(CultureInfo.InvariantCulture)}");
            return ok ? 0 : 1;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }
}
