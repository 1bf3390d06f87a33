using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Persistence;
using Linformer.MLNet.Tests.Hardening;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// Mutates the ML.NET model zip of a small Linformer transformer (raw bytes, zip entries, the weights entry and its
/// TorchSharp state dict, the settings JSON) and judges each load: identical outputs on fixed rows, or a clear
/// refusal (<see cref="FileFuzzer.JudgeRefusal"/>). Every case is a pure function of its seed.
/// </summary>
internal sealed class ModelZipFuzzer : IDisposable
{
    private const string WeightsEntry = "TransformerChain/LinformerWeights";

    private readonly MLContext ml = new(seed: 1);
    private readonly IDataView rows;
    private readonly DataViewSchema inputSchema;
    private readonly byte[] original;
    private readonly List<(string Name, byte[] Content)> entries;
    private readonly byte[] stateDict;
    private readonly List<(int Offset, int Length, string What, long Value)> fields;
    private readonly string settingsJson;
    private readonly List<float[]> expected;

    public ModelZipFuzzer()
    {
        var train = ml.Data.LoadFromEnumerable(Tiny.Rows(12, 1));
        rows = ml.Data.LoadFromEnumerable(Tiny.Rows(6, 2).ToList());
        inputSchema = train.Schema;
        using (var model = Tiny.Fit(ml, train, Tiny.Options(epochs: 1, label: false)))
        {
            var ms = new MemoryStream();
            ml.Model.Save(model, inputSchema, ms);
            original = ms.ToArray();
            settingsJson = LinformerModelFormat.Serialize(model.Spec, model.Settings);
        }
        entries = FileFuzzer.ReadZip(original);
        var weights = entries.Single(e => e.Name == WeightsEntry).Content;
        int length = BinaryPrimitives.ReadInt32LittleEndian(weights);
        stateDict = weights[4..(4 + length)];
        fields = StateDictFields(stateDict);

        using var loaded = (LinformerTransformer)ml.Model.Load(new MemoryStream(original), out _);
        expected = Tiny.Features(loaded, rows);
        // The forger must reproduce the saved model exactly, or its mutations would test something else.
        Assert.AreEqual(4 + length + 32 + 32, weights.Length, "format 1.3: length, state dict, two SHA-256");
        using var forged = (LinformerTransformer)ml.Model.Load(new MemoryStream(Forge(settingsJson, weights)), out _);
        Tiny.AssertBitIdentical(expected, Tiny.Features(forged, rows), "a model forged from the saved settings and weights");
    }


    /// <summary>The case of <paramref name="seed"/>: one mutation family, then one mutation in it.</summary>
    public FuzzCase Case(int seed)
    {
        var r = new Random(seed);
        switch (r.Next(8))
        {
            case 0:
            {
                var (bytes, what) = FileFuzzer.Damage(r, original, 0, original.Length, "zip file");
                return new(seed, what, bytes, FuzzExpectation.SameModel);
            }
            case 1:
            {
                // The central directory and the local headers hold the sizes, offsets and CRCs.
                int tail = Math.Max(0, original.Length - 400);
                bool end = r.Next(2) == 0;
                var (bytes, what) = FileFuzzer.Damage(r, original, end ? tail : 0, end ? original.Length : 120, end ? "zip central directory" : "zip first local header");
                return new(seed, what, bytes, FuzzExpectation.SameModel);
            }
            case 2:
            {
                // One entry's content damaged, the zip rebuilt with correct CRCs: what the SHA-256 and the parsers must catch.
                int i = r.Next(entries.Count);
                var (name, content) = entries[i];
                var (bytes, what) = FileFuzzer.Damage(r, content, 0, Math.Max(1, content.Length), $"entry '{name}' (valid CRC)");
                var copy = entries.ToList();
                copy[i] = (name, bytes);
                // Model.key's string table holds the settings JSON, which the settings' SHA-256 (format 1.3) covers.
                return new(seed, what, FileFuzzer.WriteZip(copy), FuzzExpectation.SameModel);
            }
            case 3: return EntryShuffle(seed, r);
            case 4:
            {
                // The weights entry's length field (not covered by the hash).
                var weights = entries.Single(e => e.Name == WeightsEntry).Content.ToArray();
                ulong value = FileFuzzer.PickHuge(r, (ulong)stateDict.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(weights, (uint)value);
                return new(seed, $"weights entry length field {stateDict.Length} set to {(int)(uint)value}", WithEntry(WeightsEntry, weights), FuzzExpectation.SameModel);
            }
            case 5:
            case 6: return StateDictCase(seed, r);
            default: return SettingsCase(seed, r);
        }
    }

    private FuzzCase EntryShuffle(int seed, Random r)
    {
        var copy = entries.ToList();
        int i = r.Next(copy.Count), j = r.Next(copy.Count);
        string what;
        switch (r.Next(5))
        {
            case 0:
                what = $"entry '{copy[i].Name}' removed";
                copy.RemoveAt(i);
                break;
            case 1:
                what = $"contents of '{copy[i].Name}' and '{copy[j].Name}' swapped";
                (copy[i], copy[j]) = ((copy[i].Name, copy[j].Content), (copy[j].Name, copy[i].Content));
                break;
            case 2:
                what = $"entry '{copy[i].Name}' renamed";
                copy[i] = (copy[i].Name + (r.Next(2) == 0 ? "2" : ".bak"), copy[i].Content);
                break;
            case 3:
                what = $"entry '{copy[i].Name}' added a second time (content of '{copy[j].Name}')";
                copy.Insert(r.Next(copy.Count + 1), (copy[i].Name, copy[j].Content));
                break;
            default:
                what = $"entries in reverse order, stray entry 'TransformerChain/Stray' added";
                copy.Reverse();
                copy.Add(("TransformerChain/Stray", Encoding.UTF8.GetBytes("stray")));
                break;
        }
        return new(seed, what, FileFuzzer.WriteZip(copy), FuzzExpectation.SameModel);
    }

    /// <summary>
    /// A field of the TorchSharp state dict changed and the SHA-256 recomputed, so the damage reaches the state-dict
    /// reader: names, dtypes, ranks, dimensions, the tensor count, or the data cut or extended. Tensor values are never
    /// changed (that would be another valid model), so any load must reproduce the outputs.
    /// </summary>
    private FuzzCase StateDictCase(int seed, Random r)
    {
        byte[] sd;
        string what;
        int pick = r.Next(fields.Count + 2);
        if (pick == fields.Count)
        {
            int cut = r.Next(stateDict.Length);
            (sd, what) = (stateDict[..cut], $"state dict truncated to {cut} of {stateDict.Length} bytes");
        }
        else if (pick == fields.Count + 1)
        {
            var extra = new byte[1 + r.Next(64)];
            r.NextBytes(extra);
            (sd, what) = ([.. stateDict, .. extra], $"{extra.Length} bytes appended to the state dict");
        }
        else
        {
            var (offset, length, field, value) = fields[pick];
            if (field.EndsWith("name", StringComparison.Ordinal))
            {
                sd = (byte[])stateDict.Clone();
                int at = offset + r.Next(length);
                sd[at] = (byte)(r.Next(2) == 0 ? sd[at] ^ (1 << r.Next(7)) : r.Next(256));
                what = $"{field}: byte {at - offset} changed to 0x{sd[at]:X2}";
            }
            else
            {
                ulong changed = FileFuzzer.PickHuge(r, (ulong)value);
                var encoded = Leb128(changed);
                sd = [.. stateDict[..offset], .. encoded, .. stateDict[(offset + length)..]];
                what = $"{field} {value} set to {changed} ({encoded.Length}-byte LEB128)";
            }
        }
        var entry = new MemoryStream();
        using (var w = new BinaryWriter(entry, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(sd.Length);
            w.Write(sd);
            w.Write(SHA256.HashData(sd));
            w.Write(SHA256.HashData(Encoding.UTF8.GetBytes(settingsJson)));
        }
        return new(seed, what + " (SHA-256 recomputed)", WithEntry(WeightsEntry, entry.ToArray()), FuzzExpectation.SameModel);
    }

    /// <summary>
    /// The settings JSON changed (structurally or as text) and written through ML.NET's own saver, stamped format 1.2,
    /// whose settings carry no hash: the settings reader itself must refuse what it cannot build, and anything it
    /// accepts is another valid model.
    /// </summary>
    private FuzzCase SettingsCase(int seed, Random r)
    {
        string json, what;
        if (r.Next(3) == 0)
            (json, what) = FileFuzzer.MutateJsonText(r, settingsJson);
        else
        {
            var root = JsonNode.Parse(settingsJson)!;
            what = "settings " + FileFuzzer.MutateJson(r, root);
            json = root.ToJsonString();
        }
        var weights = entries.Single(e => e.Name == WeightsEntry).Content;
        return new(seed, what, Forge(json.Length == 0 ? " " : json, weights), FuzzExpectation.EditedModel);
    }

    private byte[] WithEntry(string name, byte[] content)
        => FileFuzzer.WriteZip(entries.Select(e => e.Name == name ? (name, content) : e));

    /// <summary>A format 1.2 model zip written by ML.NET whose Linformer entry holds the given settings and weights entry.</summary>
    private byte[] Forge(string json, byte[] weightsEntry)
    {
        // Format 1.2: the weights entry ends with the weights' SHA-256; 1.3 appends the settings' one.
        weightsEntry = weightsEntry[..^32];
        var ms = new MemoryStream();
        ml.Model.Save(new ForgedLinformerModel(json, weightsEntry), inputSchema, ms);
        return ms.ToArray();
    }

    /// <summary>Loads the case and judges it; adds the outcome (or the failure) to <paramref name="tally"/>.</summary>
    public void Run(FuzzCase c, FuzzTally tally)
    {
        ITransformer? loaded = null;
        try
        {
            try { loaded = ml.Model.Load(new MemoryStream(c.Bytes), out _); }
            catch (Exception ex)
            {
                bool byMLNet = FileFuzzer.BeforeLinformerLoader(ex);
                if ((byMLNet ? FileFuzzer.JudgeMLNetRefusal(ex) : FileFuzzer.JudgeRefusal(ex)) is { } bad) tally.Fail(c, bad);
                else tally.Add(FuzzOutcome.Refused, FileFuzzer.Unwrap(ex), byMLNet);
                return;
            }
            if (loaded is not LinformerTransformer model)
            {
                tally.Fail(c, $"loaded as {loaded.GetType().Name}, not as a Linformer transformer");
                return;
            }
            bool sameSettings = LinformerModelFormat.Serialize(model.Spec, model.Settings) == settingsJson;
            List<float[]> actual;
            try { actual = model.Transform(rows).GetColumn<float[]>(model.OutputColumnName).ToList(); }
            catch (Exception ex)
            {
                // Settings edited into another valid model may not fit the rows (another input column, another length).
                if (!sameSettings && c.Expect == FuzzExpectation.EditedModel && FileFuzzer.JudgeTransformRefusal(ex) is null)
                    tally.Add(FuzzOutcome.LoadedEdited);
                else
                    tally.Fail(c, $"loaded, but Transform failed: {FileFuzzer.Chain(ex)}");
                return;
            }
            if (FileFuzzer.BitIdentical(expected, actual)) tally.Add(FuzzOutcome.LoadedIdentical);
            else if (!sameSettings && c.Expect == FuzzExpectation.EditedModel) tally.Add(FuzzOutcome.LoadedEdited);
            else tally.Fail(c, sameSettings
                ? "loaded with the original settings but different outputs: a silently different model"
                : "loaded with other settings from damage the file's checks should have caught");
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    public void Dispose() { }

    // ------------------------------------------------------------ TorchSharp's state-dict layout

    /// <summary>
    /// The fields of a state dict as <c>Module.save</c> writes it: a LEB128 tensor count, then per tensor its name
    /// (7-bit-encoded length and UTF-8 bytes), LEB128 dtype, rank and dimensions, and the raw data.
    /// </summary>
    private static List<(int Offset, int Length, string What, long Value)> StateDictFields(byte[] sd)
    {
        var list = new List<(int, int, string, long)>();
        int pos = 0;
        long Read(string what)
        {
            int start = pos;
            long value = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = sd[pos++];
                value |= (long)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) break;
            }
            list.Add((start, pos - start, what, value));
            return value;
        }
        long count = Read("tensor count");
        for (long i = 0; i < count; i++)
        {
            int nameLength = (int)Read($"tensor {i} name length");
            string name = Encoding.UTF8.GetString(sd, pos, nameLength);
            list.Add((pos, nameLength, $"tensor '{name}' name", 0));
            pos += nameLength;
            var dtype = (TorchSharp.torch.ScalarType)Read($"tensor '{name}' dtype");
            long rank = Read($"tensor '{name}' rank");
            long elements = 1;
            for (int d = 0; d < rank; d++) elements *= Read($"tensor '{name}' dimension {d}");
            Assert.AreEqual(TorchSharp.torch.ScalarType.Float32, dtype, $"the fuzzed model's tensor '{name}'");
            pos += checked((int)(elements * 4));
        }
        Assert.AreEqual(sd.Length, pos, "the state dict parses to its end");
        return list;
    }

    private static byte[] Leb128(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value != 0 ? (byte)(b | 0x80) : b);
        } while (value != 0);
        return [.. bytes];
    }
}

/// <summary>
/// Writes a Linformer model entry with arbitrary settings JSON and weights-entry bytes through ML.NET's own saver,
/// the same header and layout as <see cref="LinformerTransformer"/>'s save: a valid zip that carries the damage.
/// </summary>
internal sealed class ForgedLinformerModel(string settingsJson, byte[] weightsEntry) : ITransformer
{
    private static readonly ModelVersionInfo Version = new("LINFORMR", 0x00010002, 0x00010001, 0x00010001,
        LinformerTransformer.LoaderSignature, typeof(LinformerTransformer).Assembly.GetName().Name!);

    public bool IsRowToRowMapper => true;
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => throw new NotSupportedException("forged for saving only");
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException("forged for saving only");
    public IDataView Transform(IDataView input) => throw new NotSupportedException("forged for saving only");

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ModelContextBridge.CheckAtModel(ctx);
        ModelContextBridge.SetVersionInfo(ctx, Version);
        ModelContextBridge.SaveNonEmptyString(ctx, settingsJson);
        ModelContextBridge.SaveBinaryStream(ctx, "LinformerWeights", w => w.Write(weightsEntry));
    }
}
