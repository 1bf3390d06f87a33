using Microsoft.ML.Data;
using Microsoft.ML.Tokenizers;
using Microsoft.ML.Transforms;

namespace Linformer.MLNet.Examples;

/// <summary>
/// Text → a fixed-length vector of GPT-2 token ids, as an ML.NET custom mapping that a saved model can carry
/// (the factory classes below are found by their contract names once the assembly is registered with
/// <c>mlContext.ComponentCatalog.RegisterAssembly</c>). Long texts are truncated, short ones padded with
/// <see cref="PaddingId"/>.
/// </summary>
public static class Gpt2Tokens
{
    /// <summary>GPT-2's vocabulary size (token ids 0 … 50256).</summary>
    public const int VocabularySize = 50257;

    /// <summary>The padding id: <c>&lt;|endoftext|&gt;</c> (50256), which ordinary text never encodes to, so no real token is masked
    /// (id 0 is "!", which spam uses a lot).</summary>
    public const int PaddingId = 50256;

    private static readonly Lazy<Tokenizer> Tokenizer = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <summary>Encodes <paramref name="text"/> into <paramref name="ids"/> (its length is N): the first N tokens, then padding.</summary>
    public static void Encode(string text, int[] ids)
    {
        var encoded = Tokenizer.Value.EncodeToIds(text ?? "", ids.Length, out _, out _);
        int i = 0;
        for (; i < encoded.Count; i++) ids[i] = encoded[i];
        Array.Fill(ids, PaddingId, i, ids.Length - i);
    }

    /// <summary>Every token id of <paramref name="text"/>, without truncation.</summary>
    public static int[] All(string text) => Tokenizer.Value.EncodeToIds(text ?? "").ToArray();

    /// <summary>How many tokens <paramref name="text"/> has without truncation.</summary>
    public static int Count(string text) => Tokenizer.Value.CountTokens(text ?? "");
}

/// <summary>The mapping's input: a text column.</summary>
public sealed class TextInput
{
    /// <summary>The text.</summary>
    public string Text { get; set; } = "";
}

/// <summary>512 token ids (the mapping's output column <c>Tokens</c>: <c>Vector&lt;Int32, 512&gt;</c>).</summary>
public sealed class Tokens512
{
    /// <summary>Token ids, padded with <see cref="Gpt2Tokens.PaddingId"/>.</summary>
    [VectorType(512)] public int[] Tokens { get; set; } = new int[512];
}

/// <summary>1024 token ids (<c>Vector&lt;Int32, 1024&gt;</c>).</summary>
public sealed class Tokens1024
{
    /// <summary>Token ids, padded with <see cref="Gpt2Tokens.PaddingId"/>.</summary>
    [VectorType(1024)] public int[] Tokens { get; set; } = new int[1024];
}

/// <summary>Text → 512 GPT-2 tokens; saved in a model as the contract name <see cref="ContractName"/>.</summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class Gpt2Tokens512Factory : CustomMappingFactory<TextInput, Tokens512>
{
    /// <summary>The contract name stored in the model zip.</summary>
    public const string ContractName = "Gpt2Tokens512";

    /// <summary>The mapping.</summary>
    public static void Map(TextInput input, Tokens512 output) => Gpt2Tokens.Encode(input.Text, output.Tokens);

    /// <inheritdoc />
    public override Action<TextInput, Tokens512> GetMapping() => Map;
}

/// <summary>Text → 1024 GPT-2 tokens; saved in a model as the contract name <see cref="ContractName"/>.</summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class Gpt2Tokens1024Factory : CustomMappingFactory<TextInput, Tokens1024>
{
    /// <summary>The contract name stored in the model zip.</summary>
    public const string ContractName = "Gpt2Tokens1024";

    /// <summary>The mapping.</summary>
    public static void Map(TextInput input, Tokens1024 output) => Gpt2Tokens.Encode(input.Text, output.Tokens);

    /// <inheritdoc />
    public override Action<TextInput, Tokens1024> GetMapping() => Map;
}
