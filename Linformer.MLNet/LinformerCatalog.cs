using Linformer.MLNet.Interop;
using Microsoft.ML;

namespace Linformer.MLNet;

/// <summary>ML.NET catalog extensions that create the Linformer transform.</summary>
public static class LinformerCatalog
{
    /// <summary>
    /// Creates a <see cref="LinformerEstimator"/> that trains a Linformer encoder on <paramref name="inputColumnName"/>
    /// and writes its mean-pooled encoding to <paramref name="outputColumnName"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="outputColumnName">Output column: <c>Vector&lt;Single, modelWidth&gt;</c>.</param>
    /// <param name="inputColumnName">Input column: <c>Vector&lt;Single, N·channels&gt;</c> or <c>Vector&lt;Int32|Int64|Key&lt;UInt32&gt;, N&gt;</c>, or <c>Text</c> (tokenised with GPT-2's tokenizer; needs <paramref name="sequenceLength"/>); null = <paramref name="outputColumnName"/>.</param>
    /// <param name="labelColumnName">Optional label (Key/Boolean: classification; Single: regression); null trains self-supervised.</param>
    /// <param name="sequenceLength">N; 0 infers it from the column.</param>
    /// <param name="channels">Channels per position of float input; 0 infers it.</param>
    /// <param name="vocabularySize">Vocabulary of Int32/Int64 token columns; 0 takes a Key column's count.</param>
    /// <param name="projectedLength">k, the projected length of keys and values.</param>
    /// <param name="modelWidth">Model width C.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="depth">Layers.</param>
    /// <param name="epochs">Training epochs (0 = no training).</param>
    public static LinformerEstimator Linformer(this TransformsCatalog catalog, string outputColumnName, string? inputColumnName = null,
        string? labelColumnName = null, int sequenceLength = 0, int channels = 0, int vocabularySize = 0,
        int projectedLength = LinformerEstimator.Defaults.ProjectedLength, int modelWidth = LinformerEstimator.Defaults.ModelWidth,
        int heads = LinformerEstimator.Defaults.Heads, int depth = LinformerEstimator.Defaults.Depth, int epochs = LinformerEstimator.Defaults.Epochs)
        => Linformer(catalog, new LinformerEstimator.Options
        {
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            LabelColumnName = labelColumnName,
            SequenceLength = sequenceLength,
            Channels = channels,
            VocabularySize = vocabularySize,
            ProjectedLength = projectedLength,
            ModelWidth = modelWidth,
            Heads = heads,
            Depth = depth,
            Epochs = epochs,
        });

    /// <summary>Creates a <see cref="LinformerEstimator"/> with every setting given in <paramref name="options"/>.</summary>
    public static LinformerEstimator Linformer(this TransformsCatalog catalog, LinformerEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LinformerEstimator(MLNetHost.Environment(catalog), options);
    }
}
