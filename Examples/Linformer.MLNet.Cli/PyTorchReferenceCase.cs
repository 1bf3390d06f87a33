using System.Text.Json;
using Linformer.MLNet.Modules;
using Linformer.MLNet.Persistence;
using static TorchSharp.torch;

namespace Linformer.MLNet.Cli;

/// <summary>
/// A recorded <c>linformer-pytorch</c> run: a folder with <c>case.json</c> (class, <c>kwargs</c>),
/// <c>weights.safetensors</c> (the state dict) and <c>io.safetensors</c> (<c>input</c>, <c>output</c>, optional
/// <c>input_mask</c>). Rebuilds the encoder in .NET and measures how far its output is from the recorded one —
/// the way to prove a conversion before relying on it. Built only from the library's public API (the PyTorch import
/// and the safetensors reader); the tests compile this file too.
/// </summary>
internal sealed class PyTorchReferenceCase : IDisposable
{
    /// <summary>The encoder built from the case's arguments with its weights loaded.</summary>
    public LinformerEncoder Encoder { get; }

    /// <summary>The recorded input: float (B, n, C) or int64 token ids (B, n).</summary>
    public Tensor Input { get; }

    /// <summary>The recorded key padding mask (B, n), true = real position, or null.</summary>
    public Tensor? InputMask { get; }

    /// <summary>The recorded output (B, n, C).</summary>
    public Tensor ExpectedOutput { get; }

    /// <summary>The Python class of the case.</summary>
    public string ClassName { get; }

    private PyTorchReferenceCase(string className, LinformerEncoder encoder, Tensor input, Tensor? mask, Tensor expected)
    {
        ClassName = className;
        Encoder = encoder;
        Input = input;
        InputMask = mask;
        ExpectedOutput = expected;
    }

    /// <summary>Reads a case folder.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is missing or invalid.</exception>
    /// <exception cref="ArgumentException">The case's arguments cannot be honoured.</exception>
    /// <remarks>A case with an <c>input_mask</c> needs <c>checkpoint_level</c> C0: the seed refuses forward keyword
    /// arguments with C1 or C2 ("Cannot run checkpointing when using kwargs"), so such an output cannot come from it.</remarks>
    public static PyTorchReferenceCase Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Case folder not found: '{folder}'.");
        string casePath = Path.Combine(folder, "case.json");
        if (!File.Exists(casePath)) throw new InvalidDataException($"'{folder}' has no case.json.");
        string className;
        Dictionary<string, JsonElement> kwargs;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(casePath));
            className = doc.RootElement.GetProperty("class").GetString() ?? throw new InvalidDataException("case.json: 'class' is null.");
            kwargs = doc.RootElement.GetProperty("kwargs").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"case.json in '{folder}' is not a valid case description: {ex.Message}", ex);
        }
        var options = PyTorchImport.OptionsFromSeedArguments(className, kwargs);
        var encoder = PyTorchImport.LoadEncoder(options, Path.Combine(folder, "weights.safetensors"));
        Dictionary<string, Tensor> io;
        try { io = SafeTensors.Read(Path.Combine(folder, "io.safetensors")); }
        catch { encoder.Dispose(); throw; }
        if (!io.TryGetValue("input", out var input) || !io.TryGetValue("output", out var output))
        {
            encoder.Dispose();
            foreach (var t in io.Values) t.Dispose();
            throw new InvalidDataException($"io.safetensors in '{folder}' needs tensors 'input' and 'output'.");
        }
        io.TryGetValue("input_mask", out var mask);
        if (mask is not null && kwargs.TryGetValue("checkpoint_level", out var level) && level.ValueKind == JsonValueKind.String && level.GetString() != "C0")
        {
            encoder.Dispose();
            foreach (var t in io.Values) t.Dispose();
            throw new InvalidDataException($"io.safetensors in '{folder}' has an input_mask, but case.json sets checkpoint_level '{level.GetString()}': " +
                "linformer-pytorch refuses forward keyword arguments such as input_mask unless checkpoint_level is C0 (\"Cannot run checkpointing when using kwargs\"), so this output cannot come from it.");
        }
        return new PyTorchReferenceCase(className, encoder, input, mask, output);
    }

    /// <summary>Runs the encoder in eval mode without gradients and returns its output (B, n, C); the caller disposes it.</summary>
    public Tensor Run()
    {
        Encoder.eval();
        using var noGrad = no_grad();
        return Encoder.forward(Input, InputMask);
    }

    /// <summary>The largest absolute difference between <see cref="Run"/> and the recorded output.</summary>
    public double MaxAbsoluteDifference()
    {
        using var scope = NewDisposeScope();
        var actual = Run();
        if (!actual.shape.SequenceEqual(ExpectedOutput.shape))
            throw new InvalidDataException($"Output shape [{string.Join(", ", actual.shape)}] differs from the recorded [{string.Join(", ", ExpectedOutput.shape)}].");
        return (actual - ExpectedOutput).abs().max().item<float>();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Encoder.Dispose();
        Input.Dispose();
        InputMask?.Dispose();
        ExpectedOutput.Dispose();
    }
}
