namespace Linformer.MLNet.Training;

/// <summary>
/// One epoch's rows in a seeded random order, drawn through a shuffle buffer of S rows: the buffer is filled from a
/// new pass over the rows, then each row given out is drawn uniformly from the buffer and its slot refilled with the
/// pass's next row; when the pass ends, the rest of the buffer is given out in random order. A row at position p can
/// come out no earlier than p - S + 1; a buffer at least as large as the rows gives a uniform shuffle of the whole set.
/// </summary>
/// <remarks>
/// The order depends on the run's seed, the epoch, S and the rows alone (not on the view's own shuffling, which
/// ML.NET does not promise to repeat), so a resumed run re-creates an epoch's order and skips the rows it had
/// trained on. Memory: the buffer (S rows) and nothing that grows with the number of rows.
/// </remarks>
internal sealed class ShuffledRows : IDisposable
{
    private readonly TrainingRows rows;
    private readonly RowPass pass;
    private readonly LabelledBatch buffer;
    private readonly Random random;
    private int filled;
    private bool exhausted;

    /// <param name="rows">The epoch's rows.</param>
    /// <param name="bufferRows">S: rows held for shuffling (at most <paramref name="rows"/>' count are allocated); 1 keeps the source's order.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="epoch">The 1-based epoch.</param>
    public ShuffledRows(TrainingRows rows, int bufferRows, int seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bufferRows);
        this.rows = rows;
        buffer = new LabelledBatch(rows.Binding, Math.Max(1, Math.Min(bufferRows, rows.Count)));
        random = new Random(SeededHash.ToSeed(SeededHash.Of(seed, SeededHash.EpochOrder, epoch)));
        pass = rows.Open();
    }

    /// <summary>Rows given out so far.</summary>
    public int Given { get; private set; }

    /// <summary>Fills <paramref name="batch"/> with the next <paramref name="count"/> rows; throws when the pass ends early (the data changed since it was counted).</summary>
    public void Fill(LabelledBatch batch, int count)
    {
        for (int i = 0; i < count; i++)
            if (!Next(batch, i)) throw rows.ChangedBetweenPasses("in this epoch's pass", Given);
        batch.Rows.Count = count;
    }

    /// <summary>Passes over the next <paramref name="count"/> rows (those a resumed run had trained on).</summary>
    public void Skip(int count)
    {
        for (int i = 0; i < count; i++)
            if (!Next(null, 0)) throw rows.ChangedBetweenPasses("when skipping the rows trained on before the checkpoint", Given);
    }

    /// <summary>Checks that the epoch gave every row: the pass has none left.</summary>
    public void CheckEnd()
    {
        int given = Given;
        while (Next(null, 0)) { }
        if (Given != given) throw rows.ChangedBetweenPasses("in this epoch's pass", Given);
    }

    private bool Next(LabelledBatch? target, int slot)
    {
        while (!exhausted && filled < buffer.Capacity)
        {
            if (pass.ReadNext(buffer, filled)) filled++;
            else exhausted = true;
        }
        if (filled == 0) return false;
        int drawn = random.Next(filled);
        target?.CopyRow(buffer, drawn, slot);
        Given++;
        if (!exhausted && pass.ReadNext(buffer, drawn)) return true;   // the drawn slot takes the pass's next row
        exhausted = true;
        filled--;
        if (drawn != filled) buffer.CopyRow(buffer, filled, drawn);    // the last row fills the gap
        return true;
    }

    public void Dispose() => pass.Dispose();
}
