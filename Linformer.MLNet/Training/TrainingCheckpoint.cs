using System.Globalization;
using System.Security.Cryptography;
using System.Reflection;
using System.Text;
using Linformer.MLNet.Model;
using Linformer.MLNet.Persistence;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// A training run between two optimizer steps, in one file: what the run is (its identity: network settings,
/// training settings, fingerprints of the data), where it is (<see cref="TrainingState"/>), the network's weights, the
/// AdamW moments, and the states of the masking and dropout random generators.
/// </summary>
/// <remarks>
/// Layout: the ASCII magic <c>LINFCKPT</c>, a format version, the identity, the state, the weights, the optimizer, the
/// generators (BinaryWriter encoding), then a SHA-256 of everything before it. Written through a temporary file in the
/// same folder and a rename, so a crash while writing leaves the previous checkpoint intact.
/// </remarks>
internal static class TrainingCheckpoint
{
    private static readonly byte[] Magic = "LINFCKPT"u8.ToArray();
    private const int FormatVersion = 3;   // 3: no row order (it follows from seed and epoch)

    /// <summary>
    /// What must be equal for a checkpoint to continue this run: the network's settings, every training setting (each
    /// property of <see cref="TrainerSettings"/> not marked <see cref="NotInCheckpointIdentityAttribute"/>, so a new
    /// setting is part of it without further code), and fingerprints of the data.
    /// </summary>
    public static List<KeyValuePair<string, string>> IdentityOf(NetworkSpec spec, TrainerSettings s, TrainingRows train, TrainingRows? validation)
    {
        var identity = new List<KeyValuePair<string, string>> { new("network settings", LinformerModelFormat.SerializeSpec(spec)) };
        foreach (var property in IdentityProperties)
            identity.Add(new(property.Name, Format(property.GetValue(s))));
        identity.Add(new("training rows", train.Count.ToString(CultureInfo.InvariantCulture)));
        identity.Add(new("training data SHA-256", train.Fingerprint()));
        identity.Add(new("validation rows", (validation?.Count ?? 0).ToString(CultureInfo.InvariantCulture)));
        identity.Add(new("validation data SHA-256", validation is null ? "-" : validation.Fingerprint()));
        return identity;
    }

    /// <summary>The training settings that belong to a run's identity, in declaration order.</summary>
    internal static IReadOnlyList<PropertyInfo> IdentityProperties { get; } = typeof(TrainerSettings)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.GetCustomAttribute<NotInCheckpointIdentityAttribute>() is null)
        .OrderBy(p => p.MetadataToken)
        .ToArray();

    private static string Format(object? value) => value switch
    {
        null => "-",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        Enum e => e.ToString(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string text => text,
        _ => throw new InvalidOperationException($"Training setting of type {value.GetType()} has no checkpoint form; give it one in {nameof(TrainingCheckpoint)}.{nameof(Format)}."),
    };

    /// <summary>Throws when the stored identity belongs to another run, naming every setting that differs.</summary>
    private static void CheckIdentity(string path, List<KeyValuePair<string, string>> stored, List<KeyValuePair<string, string>> current)
    {
        var byName = stored.ToDictionary(kv => kv.Key, kv => kv.Value);
        var differences = new List<string>();
        foreach (var (name, value) in current)
        {
            if (!byName.TryGetValue(name, out var old)) differences.Add($"{name}: missing in the checkpoint");
            else if (old != value) differences.Add($"{name}: checkpoint {Shorten(old)}, this Fit {Shorten(value)}");
        }
        if (differences.Count > 0)
            throw new InvalidOperationException(
                $"The checkpoint '{path}' was written by another training run and cannot be resumed: {string.Join("; ", differences)}. " +
                "Resume with the same data, seed and options, or delete the checkpoint to start over.");
    }

    private static string Shorten(string value) => value.Length <= 300 ? value : value[..300] + "…";

    /// <summary>Writes the run at <paramref name="path"/> (atomically).</summary>
    public static void Save(string path, List<KeyValuePair<string, string>> identity, TrainingState state, LinformerNetwork network,
        OptimizerHelper optimizer, Generator maskingGenerator)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(identity.Count);
            foreach (var (name, value) in identity) { w.Write(name); w.Write(value); }
            state.Write(w);
            WriteBytes(w, Bytes(s => network.save(new BinaryWriter(s, Encoding.UTF8, leaveOpen: true))));
            WriteBytes(w, Bytes(s => optimizer.save_state_dict(new BinaryWriter(s, Encoding.UTF8, leaveOpen: true))));
            WriteBytes(w, StateOf(maskingGenerator));
            WriteBytes(w, GlobalState());
        }
        var hash = SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        buffer.Write(hash);
        AtomicFile.Write(path, stream => stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static byte[] Bytes(Action<Stream> write)
    {
        using var buffer = new MemoryStream();
        write(buffer);
        return buffer.ToArray();
    }

    /// <summary>
    /// Continues the run stored at <paramref name="path"/>: checks that it is this run (<paramref name="identity"/>),
    /// loads the weights, the optimizer and both generators, and returns the stored state.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint, is of another format version, truncated or corrupt; the message names the file.</exception>
    /// <exception cref="InvalidOperationException">The checkpoint belongs to another run; the message names each difference.</exception>
    public static TrainingState Resume(string path, List<KeyValuePair<string, string>> identity, LinformerNetwork network,
        OptimizerHelper optimizer, Generator maskingGenerator)
    {
        var bytes = File.ReadAllBytes(path);
        InvalidDataException Bad(string what) => new($"The training checkpoint '{path}' cannot be read: {what}.");
        if (bytes.Length < Magic.Length + 4 + SHA256.HashSizeInBytes || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Bad($"it does not start with the checkpoint signature 'LINFCKPT' ({bytes.Length} bytes)");
        var body = bytes.AsSpan(0, bytes.Length - SHA256.HashSizeInBytes);
        var stored = bytes.AsSpan(bytes.Length - SHA256.HashSizeInBytes);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(stored))
            throw Bad("its SHA-256 does not match its content (truncated or corrupt)");
        TrainingState? state = null;
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, body.Length), Encoding.UTF8);
            r.ReadBytes(Magic.Length);
            int version = r.ReadInt32();
            if (version != FormatVersion) throw Bad($"it has format version {version}; this Linformer.MLNet reads version {FormatVersion}");
            int count = r.ReadInt32();
            var storedIdentity = new List<KeyValuePair<string, string>>(count);
            for (int i = 0; i < count; i++) storedIdentity.Add(new(r.ReadString(), r.ReadString()));
            CheckIdentity(path, storedIdentity, identity);
            state = TrainingState.Read(r);
            using (var stream = new MemoryStream(ReadBytes(r))) network.load(new BinaryReader(stream), strict: true);
            using (var stream = new MemoryStream(ReadBytes(r))) optimizer.load_state_dict(new BinaryReader(stream));
            Restore(maskingGenerator, ReadBytes(r));
            RestoreGlobal(ReadBytes(r));
            return state;
        }
        catch (EndOfStreamException)
        {
            state?.Dispose();
            throw Bad("it ends early");
        }
        catch
        {
            state?.Dispose();
            throw;
        }
    }

    internal static void WriteBytes(BinaryWriter w, byte[] bytes) { w.Write(bytes.Length); w.Write(bytes); }

    internal static byte[] ReadBytes(BinaryReader r)
    {
        int length = r.ReadInt32();
        if (length < 0) throw new EndOfStreamException();
        var bytes = r.ReadBytes(length);
        if (bytes.Length != length) throw new EndOfStreamException();
        return bytes;
    }

    /// <summary>A random generator's state as bytes.</summary>
    private static byte[] StateOf(Generator generator)
    {
        using var state = generator.get_state();
        return state.bytes.ToArray();
    }

    private static void Restore(Generator generator, byte[] state)
    {
        using var t = tensor(state, dtype: uint8);
        generator.set_state(t);
    }

    /// <summary>The global CPU generator's state (dropout draws from it).</summary>
    private static byte[] GlobalState()
    {
        using var state = get_rng_state();
        return state.bytes.ToArray();
    }

    private static void RestoreGlobal(byte[] state)
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
