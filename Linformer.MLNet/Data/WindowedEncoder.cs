namespace Linformer.MLNet.Data;

/// <summary>
/// Encodes rows as windows of N positions (<see cref="LinformerLongInputs.Windows"/>, docs/long-inputs.md): each row
/// of any length is split into ⌈L/N⌉ consecutive windows, the last padded and masked; windows of successive rows
/// are packed into batches of at most <c>BatchSize</c> windows, so a row of any length encodes in bounded memory.
/// A row's result is the mean over its windows, in double precision:
/// <list type="bullet">
/// <item>mean pooling: Σ_w c_w·m_w / Σ_w c_w, with m_w the window's mean over its c_w real positions, so the mean over
/// every real position of the row;</item>
/// <item>first position: the plain mean of the windows' first positions;</item>
/// <item>the head: the head of the row's mean-pooled encoding (a linear map, so for logits and log-odds the same as
/// the c_w-weighted mean of the windows' ones).</item>
/// </list>
/// Windows without a real position (all masked) are left out; a row without any is an error, as with truncation. A row
/// of at most N positions is one window and gives exactly what truncation gives.
/// </summary>
internal sealed class WindowedEncoder
{
    private readonly BatchEncoder encoder;
    private readonly SequenceBatch windows;
    private readonly int width;
    private readonly bool firstPosition;
    private readonly float[] pooled;          // per window in the batch: pooled by the output kind
    private readonly float[]? meanPooled;     // per window: mean-pooled, when the head needs it and the output is not
    private readonly int[] owner;             // per window: the row it belongs to
    private readonly double[] sums;           // per row: Σ weight · pooled
    private readonly double[]? meanSums;      // per row: Σ c_w · mean-pooled (head)
    private readonly double[] weights;        // per row: Σ weight (c_w, or windows for first position)
    private readonly double[] realPositions;  // per row: Σ c_w
    private readonly float[] rowMeans;

    /// <summary>The TorchSharp engine that windows need (its pooled window sums and the head on their mean).</summary>
    public static BatchEncoder Engine(ISequenceEncoder encoder) => encoder as BatchEncoder
        ?? throw new NotSupportedException($"LongInputs = Windows needs the TorchSharp encoder; {encoder.GetType().Name} encodes rows of at most N positions.");

    /// <param name="encoder">The network.</param>
    /// <param name="binding">The input binding (variable-length).</param>
    /// <param name="rows">Rows per call to <see cref="Finish"/>.</param>
    /// <param name="windowsPerBatch">Windows per forward pass.</param>
    /// <param name="head">Whether the head's outputs are needed.</param>
    public WindowedEncoder(BatchEncoder encoder, InputBinding binding, int rows, int windowsPerBatch, bool head)
    {
        this.encoder = encoder;
        width = encoder.FeatureSize;
        firstPosition = encoder.OutputKind == LinformerOutputKind.FirstPosition;
        if (encoder.OutputKind == LinformerOutputKind.Sequence)
            throw new InvalidOperationException("LongInputs = Windows cannot give sequence output (OutputKind = Sequence): windows of one row have no single sequence.");
        windows = new SequenceBatch(binding, windowsPerBatch);
        pooled = new float[windowsPerBatch * width];
        owner = new int[windowsPerBatch];
        sums = new double[rows * width];
        weights = new double[rows];
        realPositions = new double[rows];
        if (head && encoder.HeadOutput != HeadOutput.None)
        {
            meanSums = firstPosition ? new double[rows * width] : sums;
            meanPooled = firstPosition ? new float[windowsPerBatch * width] : null;
            rowMeans = new float[rows * width];
        }
        else rowMeans = Array.Empty<float>();
    }

    /// <summary>Rows added since the last <see cref="Finish"/>.</summary>
    public int Count { get; private set; }

    /// <summary>Drops the rows and windows not yet finished (after a failed <see cref="Add"/>).</summary>
    public void Reset()
    {
        Count = 0;
        windows.Count = 0;
    }

    /// <summary>Reads the reader's current row and encodes its windows (those that fill a batch at once; the rest at <see cref="Finish"/>).</summary>
    public void Add(SequenceReader reader)
    {
        int row = Count;
        if (row == weights.Length) throw new InvalidOperationException($"WindowedEncoder holds {weights.Length} rows; call Finish first.");
        Count++;
        sums.AsSpan(row * width, width).Clear();
        meanSums?.AsSpan(row * width, width).Clear();
        weights[row] = 0;
        realPositions[row] = 0;
        int n = windows.Binding.SequenceLength, v = windows.Binding.ValuesPerRow;
        int count = reader.LoadWindows();
        bool any = false;
        for (int w = 0; w < count; w++)
        {
            int slot = windows.Count;
            bool real = reader.ReadWindow(w,
                windows.Values is null ? Span<float>.Empty : windows.Values.AsSpan(slot * v, v),
                windows.Ids is null ? Span<long>.Empty : windows.Ids.AsSpan(slot * n, n),
                windows.Mask.AsSpan(slot * n, n));
            if (!real) continue;   // all masked: nothing to average
            any = true;
            owner[slot] = row;
            if (++windows.Count == windows.Capacity) Flush();
        }
        if (!any) throw reader.NoRealPosition();
    }

    /// <summary>Encodes the windows still pending and writes each row's result: <paramref name="features"/> (rows·C) and, when asked for, <paramref name="head"/>.</summary>
    public void Finish(float[] features, float[]? head)
    {
        Flush();
        for (int row = 0; row < Count; row++)
            for (int j = 0; j < width; j++)
            {
                features[row * width + j] = (float)(sums[row * width + j] / weights[row]);
                if (meanSums is not null) rowMeans[row * width + j] = (float)(meanSums[row * width + j] / realPositions[row]);
            }
        if (meanSums is not null && head is not null) encoder.EncodeHead(rowMeans, Count, head);
        Count = 0;
    }

    private void Flush()
    {
        if (windows.Count == 0) return;
        encoder.EncodeWindows(windows, pooled, meanPooled);
        int n = windows.Binding.SequenceLength;
        for (int slot = 0; slot < windows.Count; slot++)
        {
            int row = owner[slot];
            double real = windows.Mask.AsSpan(slot * n, n).Count(true);
            double weight = firstPosition ? 1 : real;
            weights[row] += weight;
            realPositions[row] += real;
            Accumulate(sums, row, pooled, slot, weight);
            if (meanPooled is not null) Accumulate(meanSums!, row, meanPooled, slot, real);
        }
        windows.Count = 0;
    }

    private void Accumulate(double[] target, int row, float[] source, int slot, double weight)
    {
        for (int j = 0; j < width; j++) target[row * width + j] += weight * source[slot * width + j];
    }
}
