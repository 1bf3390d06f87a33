using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Linformer.MLNet.Data;

namespace Linformer.MLNet.Training;

/// <summary>
/// Which rows of a source a training run reads, decided by each row's position alone (0-based, in the source's
/// order), so that every pass, every epoch and every process picks the same rows without holding a list of them:
/// the side of the validation split (a seeded hash of the position) and the shard of a data-parallel run
/// (position mod <see cref="ShardCount"/> = <see cref="ShardIndex"/>).
/// </summary>
internal sealed record RowSelection
{
    /// <summary>Every row: no split, one shard.</summary>
    public static RowSelection All { get; } = new();

    /// <summary>Share of positions held out for validation; 0 = no split.</summary>
    public double ValidationFraction { get; init; }
    /// <summary>True selects the held-out side of the split, false the training side.</summary>
    public bool HeldOut { get; init; }
    /// <summary>Seed of the split's hash.</summary>
    public int Seed { get; init; }
    /// <summary>This process's shard, in [0, <see cref="ShardCount"/>).</summary>
    public int ShardIndex { get; init; }
    /// <summary>Shards the rows are dealt into (data-parallel processes); 1 = all rows.</summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>Whether the row at <paramref name="position"/> belongs to this selection.</summary>
    public bool Keeps(long position)
    {
        if (ShardCount > 1 && position % ShardCount != ShardIndex) return false;
        return ValidationFraction <= 0 || IsHeldOut(Seed, position, ValidationFraction) == HeldOut;
    }

    /// <summary>Whether the split of <paramref name="seed"/> holds the row at <paramref name="position"/> out: its hash, read as a fraction of [0, 1), is below <paramref name="fraction"/>.</summary>
    public static bool IsHeldOut(int seed, long position, double fraction)
        => SeededHash.UnitInterval(SeededHash.Of(seed, SeededHash.ValidationSplit, position)) < fraction;
}

/// <summary>SplitMix64 hashes of (seed, purpose, value): deterministic on every platform and .NET version, unlike <see cref="HashCode"/>.</summary>
internal static class SeededHash
{
    public const ulong ValidationSplit = 1;
    public const ulong EpochOrder = 2;

    public static ulong Of(int seed, ulong purpose, long value) => Mix(Mix(Mix((uint)seed) ^ purpose) ^ (ulong)value);

    /// <summary>A 31-bit seed for <see cref="Random"/>.</summary>
    public static int ToSeed(ulong hash) => (int)(hash >> 33);

    /// <summary>The top 53 bits as a double in [0, 1).</summary>
    public static double UnitInterval(ulong hash) => (hash >> 11) * (1.0 / (1UL << 53));

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}

/// <summary>One sequential pass over a source's selected rows.</summary>
internal abstract class RowPass : IDisposable
{
    /// <summary>Reads the next selected row (sequence, mask, label) into slot <paramref name="slot"/> of <paramref name="batch"/>; false at the end.</summary>
    public abstract bool ReadNext(LabelledBatch batch, int slot);

    public virtual void Dispose() { }
}

/// <summary>
/// The rows a training run reads, pass by pass: every epoch opens a new pass, so nothing but the batch and the
/// shuffle buffer is held in memory. Every pass must give the same rows in the same order (as ML.NET's
/// <c>IDataView</c> contract requires of sequential cursors).
/// </summary>
internal abstract class TrainingRows
{
    private int? count;

    /// <summary>The columns and shape of a row.</summary>
    public abstract InputBinding Binding { get; }

    /// <summary>Which rows of the source this reads.</summary>
    public abstract RowSelection Selection { get; }

    /// <summary>The rows one pass gives (counted once, by a pass that reads no sequences).</summary>
    public int Count => count ??= CountRows();

    protected abstract int CountRows();

    /// <summary>A pass over the selected rows in the source's order.</summary>
    public abstract RowPass Open();

    /// <summary>A SHA-256 over every row one pass gives (values or ids, mask, labels), in order; for checkpoint identities.</summary>
    public string Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var one = new LabelledBatch(Binding, 1);
        var rows = one.Rows;
        using var pass = Open();
        while (pass.ReadNext(one, 0))
        {
            if (rows.Values is not null) hash.AppendData(MemoryMarshal.AsBytes(rows.Values.AsSpan()));
            if (rows.Ids is not null) hash.AppendData(MemoryMarshal.AsBytes(rows.Ids.AsSpan()));
            hash.AppendData(MemoryMarshal.AsBytes(rows.Mask.AsSpan()));
            hash.AppendData(MemoryMarshal.AsBytes(one.ClassLabels.AsSpan()));
            hash.AppendData(MemoryMarshal.AsBytes(one.RegressionTargets.AsSpan()));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>The error for a source that gave another number of rows in a later pass than when it was counted.</summary>
    public InvalidOperationException ChangedBetweenPasses(string what, int rows)
        => new(string.Create(CultureInfo.InvariantCulture,
            $"The training data gave {rows} row(s) {what}, but {Count} when it was counted: every pass over column '{Binding.Column}' must give the same rows (an IDataView's cursors must be repeatable)."));
}

/// <summary>Training rows held in memory (sequences, masks and labels), read in place.</summary>
internal sealed class TrainingSet(SequenceBatch rows, long[]? classLabels, float[]? regressionLabels, RowSelection? selection = null) : TrainingRows
{
    public SequenceBatch Rows { get; } = rows;
    public long[]? ClassLabels { get; } = classLabels;
    public float[]? RegressionLabels { get; } = regressionLabels;
    public override InputBinding Binding => Rows.Binding;
    public override RowSelection Selection { get; } = selection ?? RowSelection.All;

    protected override int CountRows()
    {
        int kept = 0;
        for (int p = 0; p < Rows.Count; p++)
            if (Selection.Keeps(p)) kept++;
        return kept;
    }

    public override RowPass Open() => new Pass(this);

    private sealed class Pass(TrainingSet set) : RowPass
    {
        private int next;

        public override bool ReadNext(LabelledBatch batch, int slot)
        {
            while (next < set.Rows.Count)
            {
                int p = next++;
                if (!set.Selection.Keeps(p)) continue;
                batch.Rows.CopyRow(set.Rows, p, slot);
                batch.ClassLabels[slot] = set.ClassLabels?[p] ?? 0;
                batch.RegressionTargets[slot] = set.RegressionLabels?[p] ?? 0;
                return true;
            }
            return false;
        }
    }
}
