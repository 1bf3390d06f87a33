using Linformer.MLNet;
using System.Globalization;

namespace Linformer.MLNet.Examples;

/// <summary>The few command-line switches the examples take: flags (<c>--quick</c>) and values (<c>--output dir</c>).</summary>
public sealed class ExampleArgs
{
    private readonly string[] args;

    /// <summary>Wraps the program's arguments.</summary>
    public ExampleArgs(string[] args) => this.args = args;

    /// <summary>True when <paramref name="flag"/> is present.</summary>
    public bool Has(string flag) => args.Contains(flag);

    /// <summary>
    /// The Linformer precision the example asks for: <see cref="LinformerPrecision.BFloat16"/> with <c>--bf16</c> or the
    /// environment variable <c>LINFORMER_PRECISION=bf16</c>, else float32.
    /// </summary>
    public LinformerPrecision Precision
        => Has("--bf16") || string.Equals(Environment.GetEnvironmentVariable("LINFORMER_PRECISION"), "bf16", StringComparison.OrdinalIgnoreCase)
            ? LinformerPrecision.BFloat16 : LinformerPrecision.Float32;

    /// <summary>The value after <paramref name="name"/>, or null.</summary>
    public string? Value(string name)
    {
        int i = Array.IndexOf(args, name);
        if (i < 0) return null;
        if (i + 1 >= args.Length) throw new ArgumentException($"{name} needs a value.");
        return args[i + 1];
    }

    /// <summary>The integer after <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public int Int(string name, int fallback)
        => Value(name) is { } v ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i : throw new ArgumentException($"{name} needs an integer, got '{v}'.") : fallback;

    /// <summary>Positional arguments (those not starting with "--" and not the value of a named one).</summary>
    public IEnumerable<string> Positional(params string[] valueNames)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (valueNames.Contains(args[i])) { i++; continue; }
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) yield return args[i];
        }
    }
}
