using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Persistence;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// The whole state of a training run between two optimizer steps, in one file: what the run is (its identity:
/// network settings, training settings, fingerprints of the data), where it is (step, epoch, the next row of the
/// epoch's shuffled order, the loss so far), the network's weights, the AdamW moments, the states of the masking
/// and dropout random generators, and early stopping's best weights and counters.
/// </summary>
/// <remarks>
/// Layout: the ASCII magic <c>LINFCKPT</c>, a format version, the fields (BinaryWriter encoding), then a SHA-256 of
/// everything before it. Written through a temporary file in the same folder and a rename, so a crash while writing
/// leaves the previous checkpoint intact.
/// </remarks>
internal sealed class TrainingCheckpoint
{
    private static readonly byte[] Magic = "LINFCKPT"u8.ToArray();
    private const int FormatVersion = 1;

    public required List<KeyValuePair<string, string>> Identity { get; init; }
    public long Step { get; init; }
    public int Epoch { get; init; }
    public int NextStart { get; init; }
    public long RowsSeen { get; init; }
    public double LossSum { get; init; }
    public int LossCount { get; init; }
    public required int[] Order { get; init; }
    public double BestLoss { get; init; }
    public int EpochsWithoutImprovement { get; init; }
    public required byte[] Network { get; init; }
    public required byte[] Optimizer { get; init; }
    public required byte[] MaskingGenerator { get; init; }
    public required byte[] GlobalGenerator { get; init; }
    public byte[]? Best { get; init; }

    /// <summary>What must be equal for a checkpoint to continue this run: settings and data fingerprints.</summary>
    public static List<KeyValuePair<string, string>> IdentityOf(NetworkSpec spec, TrainerSettings s, TrainingSet train, TrainingSet? validation)
    {
        static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        return
        [
            new("network settings", Persistence.LinformerModelFormat.SerializeSpec(spec)),
            new("Epochs", s.Epochs.ToString(CultureInfo.InvariantCulture)),
            new("BatchSize", s.BatchSize.ToString(CultureInfo.InvariantCulture)),
            new("LearningRate", D(s.LearningRate)),
            new("WarmupFraction", D(s.WarmupFraction)),
            new("LearningRateDecay", s.Decay.ToString()),
            new("WeightDecay", D(s.WeightDecay)),
            new("GradientClipNorm", D(s.GradientClipNorm)),
            new("seed", s.Seed.ToString(CultureInfo.InvariantCulture)),
            new("EarlyStoppingPatience", s.EarlyStoppingPatience.ToString(CultureInfo.InvariantCulture)),
            new("MaskingProbability", D(s.MaskingProbability)),
            new("training rows", train.Count.ToString(CultureInfo.InvariantCulture)),
            new("training data SHA-256", Fingerprint(train)),
            new("validation rows", (validation?.Count ?? 0).ToString(CultureInfo.InvariantCulture)),
            new("validation data SHA-256", validation is null ? "-" : Fingerprint(validation)),
        ];
    }

    private static string Fingerprint(TrainingSet set)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var rows = set.Rows;
        int n = rows.Binding.SequenceLength;
        if (rows.Values is not null) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.Values.AsSpan(0, rows.Count * rows.Binding.ValuesPerRow)));
        if (rows.Ids is not null) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.Ids.AsSpan(0, rows.Count * n)));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.Mask.AsSpan(0, rows.Count * n)));
        if (set.ClassLabels is not null) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.ClassLabels.AsSpan()));
        if (set.RegressionLabels is not null) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.RegressionLabels.AsSpan()));
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Throws when this checkpoint belongs to another run, naming every setting that differs.</summary>
    public void CheckIdentity(string path, List<KeyValuePair<string, string>> current)
    {
        var stored = Identity.ToDictionary(kv => kv.Key, kv => kv.Value);
        var differences = new List<string>();
        foreach (var (name, value) in current)
        {
            if (!stored.TryGetValue(name, out var old)) differences.Add($"{name}: missing in the checkpoint");
            else if (old != value) differences.Add($"{name}: checkpoint {Shorten(old)}, this Fit {Shorten(value)}");
        }
        if (differences.Count > 0)
            throw new InvalidOperationException(
                $"The checkpoint '{path}' was written by another training run and cannot be resumed: {string.Join("; ", differences)}. " +
                "Resume with the same data, seed and options, or delete the checkpoint to start over.");
    }

    private static string Shorten(string value) => value.Length <= 300 ? value : value[..300] + "…";

    public void Write(string path)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(Identity.Count);
            foreach (var (name, value) in Identity) { w.Write(name); w.Write(value); }
            w.Write(Step); w.Write(Epoch); w.Write(NextStart); w.Write(RowsSeen); w.Write(LossSum); w.Write(LossCount);
            w.Write(Order.Length);
            foreach (var i in Order) w.Write(i);
            w.Write(BestLoss); w.Write(EpochsWithoutImprovement);
            WriteBytes(w, Network); WriteBytes(w, Optimizer); WriteBytes(w, MaskingGenerator); WriteBytes(w, GlobalGenerator);
            w.Write(Best is not null);
            if (Best is not null) WriteBytes(w, Best);
        }
        var hash = SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        buffer.Write(hash);
        AtomicFile.Write(path, stream => stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static void WriteBytes(BinaryWriter w, byte[] bytes) { w.Write(bytes.Length); w.Write(bytes); }

    /// <exception cref="InvalidDataException">The file is not a checkpoint, is of another format version, truncated or corrupt; the message names the file.</exception>
    public static TrainingCheckpoint Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        InvalidDataException Bad(string what) => new($"The training checkpoint '{path}' cannot be read: {what}.");
        if (bytes.Length < Magic.Length + 4 + SHA256.HashSizeInBytes || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Bad($"it does not start with the checkpoint signature 'LINFCKPT' ({bytes.Length} bytes)");
        var body = bytes.AsSpan(0, bytes.Length - SHA256.HashSizeInBytes);
        var stored = bytes.AsSpan(bytes.Length - SHA256.HashSizeInBytes);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(stored))
            throw Bad("its SHA-256 does not match its content (truncated or corrupt)");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, body.Length), Encoding.UTF8);
            r.ReadBytes(Magic.Length);
            int version = r.ReadInt32();
            if (version != FormatVersion) throw Bad($"it has format version {version}; this Linformer.MLNet reads version {FormatVersion}");
            int count = r.ReadInt32();
            var identity = new List<KeyValuePair<string, string>>(count);
            for (int i = 0; i < count; i++) identity.Add(new(r.ReadString(), r.ReadString()));
            long step = r.ReadInt64(); int epoch = r.ReadInt32(); int nextStart = r.ReadInt32(); long rowsSeen = r.ReadInt64();
            double lossSum = r.ReadDouble(); int lossCount = r.ReadInt32();
            var order = new int[r.ReadInt32()];
            for (int i = 0; i < order.Length; i++) order[i] = r.ReadInt32();
            double bestLoss = r.ReadDouble(); int without = r.ReadInt32();
            var network = ReadBytes(r); var optimizer = ReadBytes(r); var masking = ReadBytes(r); var global = ReadBytes(r);
            byte[]? best = r.ReadBoolean() ? ReadBytes(r) : null;
            return new TrainingCheckpoint
            {
                Identity = identity, Step = step, Epoch = epoch, NextStart = nextStart, RowsSeen = rowsSeen, LossSum = lossSum,
                LossCount = lossCount, Order = order, BestLoss = bestLoss, EpochsWithoutImprovement = without, Network = network,
                Optimizer = optimizer, MaskingGenerator = masking, GlobalGenerator = global, Best = best,
            };
        }
        catch (EndOfStreamException) { throw Bad("it ends early"); }
    }

    private static byte[] ReadBytes(BinaryReader r)
    {
        int length = r.ReadInt32();
        if (length < 0) throw new EndOfStreamException();
        var bytes = r.ReadBytes(length);
        if (bytes.Length != length) throw new EndOfStreamException();
        return bytes;
    }

    /// <summary>A random generator's state as bytes.</summary>
    public static byte[] StateOf(Generator generator)
    {
        using var state = generator.get_state();
        return state.bytes.ToArray();
    }

    public static void Restore(Generator generator, byte[] state)
    {
        using var t = tensor(state, dtype: uint8);
        generator.set_state(t);
    }

    /// <summary>The global CPU generator's state (dropout draws from it).</summary>
    public static byte[] GlobalState()
    {
        using var state = get_rng_state();
        return state.bytes.ToArray();
    }

    public static void RestoreGlobal(byte[] state)
    {
        using var t = tensor(state, dtype: uint8);
        set_rng_state(t);
    }

    /// <summary>Serialises a state dict snapshot (name, dtype, shape, raw bytes per tensor).</summary>
    public static byte[] Serialize(Dictionary<string, Tensor> state)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(state.Count);
            foreach (var (name, t) in state)
            {
                using var cpu = t.cpu().contiguous();
                w.Write(name);
                w.Write((int)cpu.dtype);
                w.Write(cpu.shape.Length);
                foreach (var d in cpu.shape) w.Write(d);
                var data = cpu.bytes;
                w.Write(data.Length);
                w.Write(data);
            }
        }
        return buffer.ToArray();
    }

    /// <summary>Reads what <see cref="Serialize"/> wrote into CPU tensors (outside any dispose scope; the caller disposes them).</summary>
    public static Dictionary<string, Tensor> Deserialize(byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        int count = r.ReadInt32();
        var result = new Dictionary<string, Tensor>(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                string name = r.ReadString();
                var dtype = (ScalarType)r.ReadInt32();
                var shape = new long[r.ReadInt32()];
                for (int d = 0; d < shape.Length; d++) shape[d] = r.ReadInt64();
                var data = ReadBytes(r);
                var t = empty(shape, dtype: dtype).DetachFromDisposeScope();
                result[name] = t;
                if (t.bytes.Length != data.Length) throw new InvalidDataException($"The checkpoint's best weights '{name}' have {data.Length} bytes for shape [{string.Join(", ", shape)}].");
                t.bytes = data;
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }
}
