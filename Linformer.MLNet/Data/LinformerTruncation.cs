// Public vocabulary of the ML.NET face: it lives in the root namespace (one `using Linformer.MLNet;`), while the file
// sits with the reader that implements it, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>Which positions of a variable-length row longer than the sequence length N are kept.</summary>
public enum LinformerTruncation
{
    /// <summary>The first N positions.</summary>
    KeepStart,
    /// <summary>The last N positions.</summary>
    KeepEnd,
    /// <summary>
    /// The first ⌊N/4⌋ and the last N − ⌊N/4⌋ positions, in order: the head + tail rule that Sun et al. (2019,
    /// <i>How to Fine-Tune BERT for Text Classification?</i>) found best for long documents.
    /// </summary>
    KeepStartAndEnd,
}
