// Public vocabulary of the ML.NET face: it lives in the root namespace (one `using Linformer.MLNet;`), while the file
// sits with the reader that implements it, so the folders keep depending one way (docs/architecture.md).
namespace Linformer.MLNet;

/// <summary>
/// What the transform does with a variable-length row longer than the sequence length N (docs/long-inputs.md).
/// <c>Fit</c> trains on each row cut by <see cref="LinformerTruncation"/> either way.
/// </summary>
public enum LinformerLongInputs
{
    /// <summary>Cut the row to N positions by the <see cref="LinformerTruncation"/> rule.</summary>
    Truncate,
    /// <summary>
    /// Encode the whole row as consecutive windows of N positions (the last one padded and masked) and average them:
    /// mean pooling takes the mean over every real position of every window, first-position pooling the mean of the
    /// windows' first positions, and the supervised head reads the mean-pooled result. Not with sequence output.
    /// </summary>
    Windows,
}
