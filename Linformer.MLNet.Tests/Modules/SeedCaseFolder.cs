using System.Text.Json;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>Writes a case folder laid out like <c>Fixtures/linformer-pytorch/*</c>.</summary>
internal static class SeedCaseFolder
{
    /// <summary>Writes <c>case.json</c>, <c>weights.safetensors</c> and <c>io.safetensors</c> into <paramref name="folder"/> (created if needed).</summary>
    public static void Write(string folder, string className, string kwargsJson, IEnumerable<KeyValuePair<string, Tensor>> state,
        Tensor input, Tensor? inputMask, Tensor output)
    {
        Directory.CreateDirectory(folder);
        var weights = state.ToList();
        SeedSafeTensors.Write(Path.Combine(folder, "weights.safetensors"), weights);
        var io = new List<KeyValuePair<string, Tensor>> { new("input", input) };
        if (inputMask is not null) io.Add(new("input_mask", inputMask));
        io.Add(new("output", output));
        SeedSafeTensors.Write(Path.Combine(folder, "io.safetensors"), io);
        WriteCaseJson(folder, className, kwargsJson, weights.Select(w => w.Key), inputMask is not null);
    }

    /// <summary>Writes (or overwrites) only <c>case.json</c>; <paramref name="kwargsJson"/> goes in verbatim, valid or not.</summary>
    public static void WriteCaseJson(string folder, string className, string kwargsJson, IEnumerable<string> parameterNames, bool hasMask)
    {
        Directory.CreateDirectory(folder);
        using var stream = File.Create(Path.Combine(folder, "case.json"));
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("implementation", "linformer-pytorch");
        json.WriteString("class", className);
        json.WritePropertyName("kwargs");
        json.WriteRawValue(kwargsJson, skipInputValidation: false);
        json.WriteString("mode", "eval (dropout off)");
        json.WriteString("input", "io.safetensors:input");
        json.WriteString("expected_output", "io.safetensors:output");
        if (hasMask) json.WriteString("input_mask", "io.safetensors:input_mask");
        else json.WriteNull("input_mask");
        json.WriteString("generated_by", "Linformer.MLNet.Tests SeedReference (random weights, naive reference forward)");
        json.WriteStartArray("parameter_names");
        foreach (var name in parameterNames) json.WriteStringValue(name);
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
