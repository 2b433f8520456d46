using System.Text;

namespace Sharpformer.Training.FineTuning;

/// <summary>
/// RFC 4180 reading of CSV (comma) and TSV (tab) files: fields in double quotes may hold the delimiter, line breaks
/// and doubled quotes (""), CRLF or LF line ends, a UTF-8 BOM is skipped. Each record comes with the 1-based line it
/// starts on, for error messages.
/// </summary>
public static class DelimitedText
{
    /// <summary>Reads all records of <paramref name="path"/>.</summary>
    /// <param name="path">The file (its name appears in errors).</param>
    /// <param name="delimiter">',' for CSV, '\t' for TSV.</param>
    /// <returns>The records with their starting line numbers; blank lines are skipped.</returns>
    /// <exception cref="InvalidDataException">A quoted field is not closed, or text follows a closing quote.</exception>
    public static IReadOnlyList<(int Line, IReadOnlyList<string> Fields)> Read(string path, char delimiter)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Parse(File.ReadAllText(path, Encoding.UTF8), delimiter, path);
    }

    /// <summary>Parses delimited text (see <see cref="Read"/>).</summary>
    /// <param name="text">The whole file.</param>
    /// <param name="delimiter">',' or '\t'.</param>
    /// <param name="source">Name used in errors.</param>
    /// <returns>The records with their starting line numbers.</returns>
    public static IReadOnlyList<(int Line, IReadOnlyList<string> Fields)> Parse(string text, char delimiter, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var records = new List<(int, IReadOnlyList<string>)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var recordLine = 1;
        var i = text.Length > 0 && text[0] == '\uFEFF' ? 1 : 0;
        var atFieldStart = true;
        var recordHasContent = false;
        while (i < text.Length)
        {
            var c = text[i];
            if (atFieldStart && c == '"')
            {
                // A quoted field: runs to the next lone quote.
                var quoteLine = line;
                i++;
                while (true)
                {
                    if (i >= text.Length)
                    {
                        throw new InvalidDataException($"{source}:{quoteLine}: a quoted field is never closed; close it with \" (write a quote inside a field as \"\").");
                    }

                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    if (text[i] == '\n') line++;
                    field.Append(text[i]);
                    i++;
                }

                if (i < text.Length && text[i] != delimiter && text[i] != '\n' && text[i] != '\r')
                {
                    throw new InvalidDataException($"{source}:{line}: text after the closing quote of a field; quote the whole field and double the quotes inside it.");
                }

                atFieldStart = false;
                recordHasContent = true;
                continue;
            }

            if (c == delimiter)
            {
                fields.Add(field.ToString());
                field.Clear();
                atFieldStart = true;
                recordHasContent = true;
                i++;
                continue;
            }

            if (c == '\r' || c == '\n')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                i++;
                if (recordHasContent || field.Length > 0)
                {
                    fields.Add(field.ToString());
                    records.Add((recordLine, fields.ToArray()));
                }

                fields.Clear();
                field.Clear();
                atFieldStart = true;
                recordHasContent = false;
                line++;
                recordLine = line;
                continue;
            }

            field.Append(c);
            atFieldStart = false;
            recordHasContent = true;
            i++;
        }

        if (recordHasContent || field.Length > 0)
        {
            fields.Add(field.ToString());
            records.Add((recordLine, fields.ToArray()));
        }

        return records;
    }
}
