using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// Mutates a <c>linformer-pytorch</c> safetensors state dict (the recorded case <c>encoder-none-relu</c>) and imports
/// each with <see cref="PyTorchImport.LoadEncoder"/>: the encoder reproduces the original output on the recorded
/// input bit for bit, or the import is refused clearly. Safetensors has no checksum, so a change confined to the
/// tensor data is another valid file: it may load with other values (counted as an edited model).
/// </summary>
internal sealed class SafetensorsFuzzer : IDisposable
{
    private readonly byte[] original;
    private readonly int dataStart;
    private readonly LinformerEncoderOptions options;
    private readonly Tensor input;
    private readonly byte[] expected;
    private readonly string path;

    public SafetensorsFuzzer(string folder)
    {
        var fixture = Path.Combine(TestPaths.SeedFixtures, "encoder-none-relu");
        original = File.ReadAllBytes(Path.Combine(fixture, "weights.safetensors"));
        dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture, "case.json")));
        var kwargs = doc.RootElement.GetProperty("kwargs").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        options = PyTorchImport.OptionsFromSeedArguments(doc.RootElement.GetProperty("class").GetString()!, kwargs);
        var io = SafeTensors.Read(Path.Combine(fixture, "io.safetensors"));
        input = io["input"];
        foreach (var (name, t) in io) if (name != "input") t.Dispose();
        path = Path.Combine(folder, "fuzz.safetensors");
        File.WriteAllBytes(path, original);
        expected = Encode() ?? throw new InvalidOperationException("the original file does not load");
    }


    /// <summary>The output bytes of the encoder imported from <see cref="path"/>.</summary>
    private byte[]? Encode()
    {
        using var encoder = PyTorchImport.LoadEncoder(options, path);
        encoder.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return encoder.forward(input).contiguous().bytes.ToArray();
    }

    public FuzzCase Case(int seed)
    {
        var r = new Random(seed);
        switch (r.Next(6))
        {
            case 0:
            case 1:
            {
                var (bytes, what) = FileFuzzer.Damage(r, original, 0, original.Length, "safetensors file");
                return new(seed, what, bytes, Expectation(bytes));
            }
            case 2:
            {
                var (bytes, what) = FileFuzzer.Damage(r, original, 0, dataStart, "safetensors header");
                return new(seed, what, bytes, Expectation(bytes));
            }
            case 3:
            {
                var bytes = (byte[])original.Clone();
                ulong value = FileFuzzer.PickHuge(r, (ulong)(dataStart - 8));
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
                return new(seed, $"header length {dataStart - 8} set to {value}", bytes, FuzzExpectation.SameModel);
            }
            case 4:
            {
                var root = JsonNode.Parse(original.AsSpan(8, dataStart - 8))!;
                var what = "header " + FileFuzzer.MutateJson(r, root);
                return new(seed, what, WithHeader(root.ToJsonString()), FuzzExpectation.SameModel);
            }
            default:
            {
                var header = Encoding.UTF8.GetString(original, 8, dataStart - 8);
                if (r.Next(4) == 0)
                {
                    // The same tensor name twice: a JSON object with a duplicate key.
                    var names = JsonNode.Parse(header)!.AsObject().Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
                    var name = names[r.Next(names.Count)];
                    var entry = $"\"{name}\":{JsonNode.Parse(header)![name]!.ToJsonString()}";
                    return new(seed, $"header: tensor '{name}' listed twice", WithHeader("{" + entry + "," + header[1..]), FuzzExpectation.SameModel);
                }
                var (json, what) = FileFuzzer.MutateJsonText(r, header);
                return new(seed, "header " + what, WithHeader(json), FuzzExpectation.SameModel);
            }
        }
    }

    /// <summary>Edits confined to the tensor data (same header, same length) are another valid file.</summary>
    private FuzzExpectation Expectation(byte[] bytes)
        => bytes.Length == original.Length && bytes.AsSpan(0, dataStart).SequenceEqual(original.AsSpan(0, dataStart))
            ? FuzzExpectation.EditedModel
            : FuzzExpectation.SameModel;

    private byte[] WithHeader(string json)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + original.Length - dataStart];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        original.AsSpan(dataStart).CopyTo(bytes.AsSpan(8 + header.Length));
        return bytes;
    }

    public void Run(FuzzCase c, FuzzTally tally)
    {
        File.WriteAllBytes(path, c.Bytes);
        byte[]? actual;
        try { actual = Encode(); }
        catch (Exception ex)
        {
            if (FileFuzzer.JudgeRefusal(ex) is { } bad) tally.Fail(c, bad);
            else if (!ex.Message.Contains("fuzz.safetensors", StringComparison.Ordinal)) tally.Fail(c, $"the message does not name the file: {FileFuzzer.Chain(ex)}");
            else tally.Add(FuzzOutcome.Refused, ex);
            return;
        }
        if (actual.AsSpan().SequenceEqual(expected)) tally.Add(FuzzOutcome.LoadedIdentical);
        else if (c.Expect == FuzzExpectation.EditedModel) tally.Add(FuzzOutcome.LoadedEdited);
        else tally.Fail(c, "imported with other outputs although only the header or the file's length changed");
    }

    public void Dispose() => input.Dispose();
}
