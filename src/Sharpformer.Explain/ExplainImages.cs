using System.Globalization;
using ScottPlot;

namespace Sharpformer.Explain;

/// <summary>The report's pictures as files beside the page: PNG heatmaps and the position picture as SVG too.</summary>
public static class ExplainImages
{
    /// <summary>
    /// Writes embeddings.png, positions.png, positions.svg, attention-layer-{l}.png (head average, one per layer) and
    /// hidden-norms.png into <paramref name="folder"/> (created if missing).
    /// </summary>
    /// <param name="report">What to draw.</param>
    /// <param name="folder">The output folder.</param>
    /// <returns>The paths written.</returns>
    public static IReadOnlyList<string> Write(ExplainReport report, string folder)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        var written = new List<string>();

        string Save(Plot plot, string name, int width, int height)
        {
            string path = Path.Combine(folder, name);
            if (name.EndsWith(".svg", StringComparison.Ordinal)) plot.SaveSvg(path, width, height);
            else plot.SavePng(path, width, height);
            written.Add(path);
            return path;
        }

        var embeddings = Heatmap(report.Embeddings, "Token embeddings (token ↓, dimension →)", signed: true);
        Save(embeddings, "embeddings.png", 900, 500);

        string positionTitle = report.Positions.Kind switch
        {
            "sinusoidal" => "Sinusoidal position encoding (position ↓, dimension →)",
            "rotary" => "Rotary angles: cos(p·θᵢ) (position ↓, frequency pair →)",
            _ => "Learned position embeddings (position ↓, dimension →)",
        };
        var positions = Heatmap(report.Positions.Table, positionTitle, signed: true);
        Save(positions, "positions.png", 800, 600);
        Save(positions, "positions.svg", 800, 600);

        for (int layer = 0; layer < report.Attention.Count; layer++)
        {
            var plot = Heatmap(report.Attention[layer].Average, string.Create(CultureInfo.InvariantCulture, $"Attention, layer {layer}, average of heads (query ↓, key →)"), signed: false);
            Save(plot, string.Create(CultureInfo.InvariantCulture, $"attention-layer-{layer}.png"), 700, 620);
        }

        int t = report.Tokens.Count;
        var norms = new double[report.HiddenNorms.Count, t];
        for (int l = 0; l < report.HiddenNorms.Count; l++)
        {
            for (int i = 0; i < t; i++) norms[l, i] = report.HiddenNorms[l][i];
        }

        var normPlot = new Plot();
        var map = normPlot.Add.Heatmap(norms);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        normPlot.Add.ColorBar(map);
        normPlot.Title("Hidden-state norm ‖h‖ (layer ↓, token →)");
        Save(normPlot, "hidden-norms.png", 900, 400);
        return written;
    }

    /// <summary>
    /// Draws a cross-attention map (output token ↓, source token →, the tokens written on the axes) to
    /// <paramref name="path"/>: SVG when the name ends in .svg, else PNG.
    /// </summary>
    /// <param name="map">The map (<see cref="Generation.Text2TextGenerationPipeline.CrossAttention"/>).</param>
    /// <param name="path">The picture file; its folder is created if missing.</param>
    /// <param name="title">The title over the picture.</param>
    /// <returns>The path written.</returns>
    /// <exception cref="ArgumentException">The path is empty or the map has no rows or columns.</exception>
    public static string CrossAttention(Generation.CrossAttentionMap map, string path, string title)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentException.ThrowIfNullOrEmpty(path);
        int rows = map.TargetTokens.Count, cols = map.SourceTokens.Count;
        if (rows == 0 || cols == 0 || map.Weights.Length != rows * cols)
        {
            throw new ArgumentException($"The cross-attention map must be {rows} × {cols} = {rows * cols} weights (got {map.Weights.Length}), with at least one row and column.", nameof(map));
        }

        var values = new double[rows, cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                values[i, j] = map.Weights[(i * cols) + j];
            }
        }

        var plot = new Plot();
        var heat = plot.Add.Heatmap(values);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        heat.ManualRange = new ScottPlot.Range(0, 1);
        plot.Add.ColorBar(heat);

        // Cell (i, j) is centred on x = j and, row 0 at the top, y = rows − 1 − i.
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [.. Enumerable.Range(0, cols).Select(j => (double)j)], [.. map.SourceTokens.Select(Label)]);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [.. Enumerable.Range(0, rows).Select(i => (double)(rows - 1 - i))], [.. map.TargetTokens.Select(Label)]);
        plot.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 90;
        plot.XLabel("source token");
        plot.YLabel("output token");
        plot.Title(title);
        int width = Math.Clamp(260 + (46 * cols), 520, 2400), height = Math.Clamp(220 + (30 * rows), 360, 2400);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        if (path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) plot.SaveSvg(path, width, height);
        else plot.SavePng(path, width, height);
        return path;
    }

    /// <summary>A token as an axis label: a leading space shown as '·', line breaks as '⏎', long tokens cut.</summary>
    private static string Label(string token)
    {
        string shown = token.Replace("\n", "⏎", StringComparison.Ordinal);
        shown = shown.Length > 0 && shown[0] == ' ' ? "·" + shown[1..] : shown;
        return shown.Length > 16 ? shown[..15] + "…" : shown;
    }

    private static Plot Heatmap(DisplayMatrix matrix, string title, bool signed)
    {
        var values = new double[matrix.Rows, matrix.Cols];
        double scale = 0;
        for (int i = 0; i < matrix.Rows; i++)
        {
            for (int j = 0; j < matrix.Cols; j++)
            {
                values[i, j] = matrix.Values[(i * matrix.Cols) + j];
                scale = Math.Max(scale, Math.Abs(values[i, j]));
            }
        }

        var plot = new Plot();
        var map = plot.Add.Heatmap(values);
        map.Colormap = signed ? new ScottPlot.Colormaps.MellowRainbow() : new ScottPlot.Colormaps.Viridis();
        if (signed && scale > 0)
        {
            map.ManualRange = new ScottPlot.Range(-scale, scale);
        }

        plot.Add.ColorBar(map);
        plot.Title(title);
        return plot;
    }
}
