namespace Linformer.MLNet.Persistence;

/// <summary>Writes a file through a temporary file in the same folder and a rename, so readers never see half a file.</summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                if (stream.CanWrite) stream.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows())
                using (var sync = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) sync.Flush(flushToDisk: true);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
