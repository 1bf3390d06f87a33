using Linformer.MLNet.Persistence;
using Microsoft.ML;

namespace Linformer.MLNet;

/// <summary>Model-file helpers for <c>mlContext.Model</c> that never leave a half-written model behind.</summary>
public static class LinformerModelOperations
{
    /// <summary>
    /// Saves <paramref name="model"/> (any ML.NET transformer, e.g. a chain holding a <see cref="LinformerTransformer"/>)
    /// and its input schema to <paramref name="filePath"/> atomically: the model is written to a temporary file in the
    /// same folder, flushed to disk, and then moved over <paramref name="filePath"/>. If saving fails, the temporary file
    /// is deleted and an existing file at <paramref name="filePath"/> is left exactly as it was.
    /// </summary>
    /// <remarks>
    /// ML.NET's own <c>mlContext.Model.Save(model, schema, path)</c> truncates the file before the model is asked to save
    /// itself, so a failure part-way (a disposed transformer, a full disk) destroys the previous model. Use this method
    /// to overwrite a model that must survive a failed save. The file is the same ML.NET model zip; load it with
    /// <c>mlContext.Model.Load</c>.
    /// </remarks>
    /// <param name="catalog">The model catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="inputSchema">The schema of the data the model was fitted on (may be null, as for <c>Model.Save</c>).</param>
    /// <param name="filePath">Where the model goes; its folder must exist.</param>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="filePath"/> does not exist.</exception>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        var full = Path.GetFullPath(filePath);
        var folder = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Cannot save the model to '{filePath}': the folder '{folder}' does not exist.");
        AtomicFile.Write(full, stream => catalog.Save(model, inputSchema, stream));
    }
}
