using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>
/// One generated reference case: arguments, random state dict, random input (and mask), and the naive reference's
/// output. Dispose it (or create it inside a dispose scope).
/// </summary>
internal sealed class SeedSweepCase : IDisposable
{
    public required SeedArguments Arguments { get; init; }
    public required Dictionary<string, Tensor> State { get; init; }
    public required Tensor Input { get; init; }
    public Tensor? InputMask { get; init; }
    public required Tensor Output { get; init; }

    /// <summary>
    /// Builds a case. <paramref name="paddedRows"/> &gt; 0 adds an input mask and that many padded batch rows (after
    /// one unpadded row), cycling through: suffix padding of half the sequence, only the first position real, a
    /// scattered mask, and a row with every position padded.
    /// </summary>
    public static SeedSweepCase Create(string className, string kwargsJson, int paddedRows = 0, long seed = 0)
    {
        if (seed == 0) seed = StableSeed(className + kwargsJson + paddedRows.ToString(CultureInfo.InvariantCulture));
        var a = SeedArguments.Parse(className, kwargsJson);
        var state = SeedStateDict.Generate(a, seed);
        Tensor? input = null, mask = null;
        try
        {
            using var g = new Generator((ulong)(seed ^ 0x5eed));
            int batch = Math.Max(2, paddedRows + 1), n = a.InputSize;
            input = a.IsLanguageModel
                ? randint(0, a.NumTokens, [batch, n], dtype: int64, generator: g)
                : randn([batch, n, a.Channels], generator: g);
            if (paddedRows > 0)
            {
                var real = new bool[batch * n];
                for (int b = 0; b < batch; b++)
                {
                    int pattern = (b - 1) % 4;   // row 0 unpadded
                    for (int p = 0; p < n; p++)
                        real[b * n + p] = b == 0 || pattern switch
                        {
                            0 => p < Math.Max(1, n / 2),
                            1 => p == 0,
                            2 => (p * 7 + b * 3) % 5 < 3,
                            _ => false,                  // every position padded: K and V all zero
                        };
                }
                mask = tensor(real, [batch, n], @bool);
            }
            var output = SeedReference.Forward(a, state, input, mask);
            return new SeedSweepCase { Arguments = a, State = state, Input = input, InputMask = mask, Output = output };
        }
        catch
        {
            foreach (var t in state.Values) t.Dispose();
            input?.Dispose();
            mask?.Dispose();
            throw;
        }
    }

    /// <summary>Writes this case as a folder that <c>PyTorchReferenceCase.Load</c> reads.</summary>
    public void WriteTo(string folder)
        => SeedCaseFolder.Write(folder, Arguments.ClassName, Arguments.KwargsJson, State, Input, InputMask, Output);

    /// <summary>A deterministic seed from a string (FNV-1a), so every row draws the same weights on every run.</summary>
    public static long StableSeed(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) { hash ^= b; hash *= 1099511628211UL; }
        return (long)(hash & 0x7fff_ffff_ffffUL) | 1;
    }

    public void Dispose()
    {
        foreach (var t in State.Values) t.Dispose();
        Input.Dispose();
        InputMask?.Dispose();
        Output.Dispose();
    }
}
