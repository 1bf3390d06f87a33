namespace Linformer.MLNet.Model;

/// <summary>
/// Which rows of the token embedding mean what (docs/token-ids.md). With reserved special tokens the input's own ids
/// take rows 0 … V−1 (Key value k is id k−1; Int32/Int64 ids as they are) and the last three rows are padding (V),
/// unknown (V+1, Key value 0 = a missing key, e.g. an unseen word) and mask (V+2, the self-supervised objective's
/// [MASK]); the embedding has V+3 rows. Without them (models saved before 1.4, and fixed-length Int32/Int64 input by
/// default) the embedding has V rows, all the input's.
/// </summary>
internal readonly record struct TokenLayout(int EmbeddingRows, bool SpecialTokens)
{
    /// <summary>Rows reserved after the input's own ids: padding, unknown, mask.</summary>
    public const int ReservedCount = 3;

    /// <summary>V: the ids the input column may hold, [0, V).</summary>
    public int InputVocabulary => SpecialTokens ? EmbeddingRows - ReservedCount : EmbeddingRows;

    /// <summary>The reserved padding id (V), or null.</summary>
    public int? PaddingId => SpecialTokens ? EmbeddingRows - 3 : null;

    /// <summary>The reserved unknown-token id (V+1) that a missing key (Key value 0) maps to, or null.</summary>
    public int? UnknownId => SpecialTokens ? EmbeddingRows - 2 : null;

    /// <summary>The reserved mask id (V+2) of the masked-token objective, or null.</summary>
    public int? MaskId => SpecialTokens ? EmbeddingRows - 1 : null;

    /// <summary>The layout of a network's token embedding.</summary>
    public static TokenLayout Of(NetworkSpec spec) => new(spec.Encoder.VocabularySize ?? 0, spec.SpecialTokens);
}
