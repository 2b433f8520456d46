using System.Globalization;

namespace Sharpformer.Text.Jinja;

/// <summary>Parses the lexer's tokens into statement and expression nodes (recursive descent, Jinja's precedence).</summary>
internal sealed class JinjaParser
{
    /// <summary>Deepest nesting of blocks and sub-expressions, so a hostile template cannot overflow the stack.</summary>
    public const int MaxNesting = 200;

    private readonly List<Token> _tokens;
    private int _index;
    private int _nesting;

    private JinjaParser(List<Token> tokens) => _tokens = tokens;

    /// <summary>Parses a whole template.</summary>
    public static List<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody([], out _);
        return body;
    }

    private Token Current => _tokens[_index];

    private static JinjaException Error(string message, Token at) =>
        new($"{message} at line {at.Line}, column {at.Column}", at.Line, at.Column);

    private Token Next() => _tokens[_index++];

    private bool IsOp(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

    private bool IsName(string name) => Current.Kind == TokenKind.Name && Current.Value == name;

    private Token ExpectOp(string op)
    {
        if (!IsOp(op))
        {
            throw Error($"Expected '{op}' but found {Describe(Current)}", Current);
        }

        return Next();
    }

    private string ExpectName()
    {
        if (Current.Kind != TokenKind.Name)
        {
            throw Error($"Expected a name but found {Describe(Current)}", Current);
        }

        return Next().Value;
    }

    private void ExpectBlockEnd()
    {
        if (Current.Kind != TokenKind.BlockEnd)
        {
            throw Error($"Expected '%}}' but found {Describe(Current)}", Current);
        }

        Next();
    }

    private static string Describe(Token token) => token.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.String => $"the string '{token.Value}'",
        _ => $"'{token.Value}'",
    };

    /// <summary>Parses statements until a block tag whose keyword is in <paramref name="endTags"/> (left unconsumed after the keyword).</summary>
    private List<Node> ParseBody(string[] endTags, out string? endTag)
    {
        var body = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (endTags.Length > 0)
                    {
                        throw Error($"Unexpected end of template: expected {string.Join(" or ", endTags.Select(t => "'{% " + t + " %}'"))}", token);
                    }

                    endTag = null;
                    return body;
                case TokenKind.Text:
                    Next();
                    body.Add(new TextNode(token.Value, token.Line, token.Column));
                    break;
                case TokenKind.VariableBegin:
                    {
                        Next();
                        var value = ParseExpression();
                        if (Current.Kind != TokenKind.VariableEnd)
                        {
                            throw Error($"Expected '}}}}' but found {Describe(Current)}", Current);
                        }

                        Next();
                        body.Add(new OutputNode(value, token.Line, token.Column));
                        break;
                    }

                case TokenKind.BlockBegin:
                    {
                        Next();
                        var keyword = Current;
                        if (keyword.Kind != TokenKind.Name)
                        {
                            throw Error($"Expected a statement keyword but found {Describe(keyword)}", keyword);
                        }

                        if (endTags.Contains(keyword.Value))
                        {
                            Next();
                            endTag = keyword.Value;
                            return body;
                        }

                        body.Add(ParseStatement(keyword));
                        break;
                    }

                default:
                    throw Error($"Unexpected {Describe(token)}", token);
            }
        }
    }

    private Node ParseStatement(Token keyword)
    {
        Next();
        Enter();
        try
        {
            return ParseStatementBody(keyword);
        }
        finally
        {
            _nesting--;
        }
    }

    private Node ParseStatementBody(Token keyword)
    {
        switch (keyword.Value)
        {
            case "if":
                return ParseIf(keyword);
            case "for":
                return ParseFor(keyword);
            case "set":
                return ParseSet(keyword);
            case "macro":
                return ParseMacro(keyword);
            case "break" or "continue":
                ExpectBlockEnd();
                return new LoopControlNode(keyword.Value == "break", keyword.Line, keyword.Column);
            case "generation":
                {
                    // transformers' {% generation %} marks assistant text; rendering passes its body through.
                    ExpectBlockEnd();
                    var body = ParseBody(["endgeneration"], out _);
                    ExpectBlockEnd();
                    return new BodyNode(body, keyword.Line, keyword.Column);
                }

            default:
                throw Error($"Unsupported Jinja statement '{{% {keyword.Value} %}}'", keyword);
        }
    }

    private IfNode ParseIf(Token keyword)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var condition = ParseExpression();
        while (true)
        {
            ExpectBlockEnd();
            var body = ParseBody(["elif", "else", "endif"], out var end);
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseExpression();
                continue;
            }

            if (end == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBody(["endif"], out _);
            }

            ExpectBlockEnd();
            return new IfNode(branches, elseBody, keyword.Line, keyword.Column);
        }
    }

    private ForNode ParseFor(Token keyword)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(","))
        {
            Next();
            targets.Add(ExpectName());
        }

        if (!IsName("in"))
        {
            throw Error($"Expected 'in' in the for loop but found {Describe(Current)}", Current);
        }

        Next();
        var iterable = ParseConditional(allowConditional: false);
        Expr? filter = null;
        if (IsName("if"))
        {
            Next();
            filter = ParseConditional(allowConditional: false);
        }

        if (IsName("recursive"))
        {
            throw Error("Unsupported Jinja construct: recursive for loops", Current);
        }

        ExpectBlockEnd();
        var body = ParseBody(["else", "endfor"], out var end);
        List<Node>? elseBody = null;
        if (end == "else")
        {
            ExpectBlockEnd();
            elseBody = ParseBody(["endfor"], out _);
        }

        ExpectBlockEnd();
        return new ForNode(targets, iterable, filter, body, elseBody, keyword.Line, keyword.Column);
    }

    private SetNode ParseSet(Token keyword)
    {
        var targets = new List<string> { ExpectName() };
        string? attribute = null;
        if (IsOp("."))
        {
            Next();
            attribute = ExpectName();
        }

        while (attribute is null && IsOp(","))
        {
            Next();
            targets.Add(ExpectName());
        }

        if (IsOp("="))
        {
            Next();
            var value = ParseTuple();
            ExpectBlockEnd();
            return new SetNode(targets, attribute, value, null, keyword.Line, keyword.Column);
        }

        if (Current.Kind == TokenKind.BlockEnd && targets.Count == 1 && attribute is null)
        {
            Next();
            var body = ParseBody(["endset"], out _);
            ExpectBlockEnd();
            return new SetNode(targets, null, null, body, keyword.Line, keyword.Column);
        }

        throw Error($"Expected '=' in the set statement but found {Describe(Current)}", Current);
    }

    private MacroNode ParseMacro(Token keyword)
    {
        string name = ExpectName();
        ExpectOp("(");
        var parameters = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            if (parameters.Count > 0)
            {
                ExpectOp(",");
            }

            string parameter = ExpectName();
            Expr? defaultValue = null;
            if (IsOp("="))
            {
                Next();
                defaultValue = ParseExpression();
            }

            parameters.Add((parameter, defaultValue));
        }

        Next();
        ExpectBlockEnd();
        var body = ParseBody(["endmacro"], out _);
        ExpectBlockEnd();
        return new MacroNode(name, parameters, body, keyword.Line, keyword.Column);
    }

    /// <summary>An expression, or several separated by commas (an implicit tuple, as in <c>set a, b = 1, 2</c>).</summary>
    private Expr ParseTuple()
    {
        var first = ParseExpression();
        if (!IsOp(","))
        {
            return first;
        }

        var items = new List<Expr> { first };
        while (IsOp(","))
        {
            Next();
            items.Add(ParseExpression());
        }

        return new ListExpr(items, true, first.Line, first.Column);
    }

    public Expr ParseExpression()
    {
        Enter();
        try
        {
            return ParseConditional(allowConditional: true);
        }
        finally
        {
            _nesting--;
        }
    }

    private void Enter()
    {
        if (++_nesting > MaxNesting)
        {
            throw Error($"Template nests blocks or expressions deeper than {MaxNesting} levels", Current);
        }
    }

    private Expr ParseConditional(bool allowConditional)
    {
        var value = ParseOr();
        while (allowConditional && IsName("if"))
        {
            Next();
            var condition = ParseOr();
            Expr? otherwise = null;
            if (IsName("else"))
            {
                Next();
                otherwise = ParseConditional(allowConditional: true);
            }

            value = new CondExpr(condition, value, otherwise, value.Line, value.Column);
        }

        return value;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or"))
        {
            Next();
            left = new BinaryExpr("or", left, ParseAnd(), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and"))
        {
            Next();
            left = new BinaryExpr("and", left, ParseNot(), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            var token = Next();
            Enter();
            try
            {
                return new UnaryExpr("not", ParseNot(), token.Line, token.Column);
            }
            finally
            {
                _nesting--;
            }
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                string op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (IsName("in"))
            {
                Next();
                rest.Add(("in", ParseMath1()));
            }
            else if (IsName("not") && _tokens[_index + 1].Kind == TokenKind.Name && _tokens[_index + 1].Value == "in")
            {
                _index += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, first.Line, first.Column);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (IsOp("+") || IsOp("-"))
        {
            string op = Next().Value;
            left = new BinaryExpr(op, left, ParseConcat(), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~"))
        {
            Next();
            left = new BinaryExpr("~", left, ParseMath2(), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%"))
        {
            string op = Next().Value;
            left = new BinaryExpr(op, left, ParsePow(), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (IsOp("**"))
        {
            Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), left.Line, left.Column);
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (IsOp("-") || IsOp("+"))
        {
            var token = Next();
            Enter();
            try
            {
                node = new UnaryExpr(token.Value, ParseUnary(withFilter: false), token.Line, token.Column);
            }
            finally
            {
                _nesting--;
            }
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        return withFilter ? ParseFilters(node) : node;
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                Next();
                return token.Value switch
                {
                    "true" or "True" => new ConstExpr(true, token.Line, token.Column),
                    "false" or "False" => new ConstExpr(false, token.Line, token.Column),
                    "none" or "None" => new ConstExpr(null, token.Line, token.Column),
                    _ => new NameExpr(token.Value, token.Line, token.Column),
                };
            case TokenKind.String:
                {
                    Next();
                    string text = token.Value;
                    while (Current.Kind == TokenKind.String)
                    {
                        text += Next().Value;
                    }

                    return new ConstExpr(text, token.Line, token.Column);
                }

            case TokenKind.Integer:
                Next();
                return long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long integer)
                    ? new ConstExpr(integer, token.Line, token.Column)
                    : throw Error($"Integer literal {token.Value} does not fit in 64 bits", token);
            case TokenKind.Float:
                Next();
                return new ConstExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line, token.Column);
            case TokenKind.Operator when token.Value == "(":
                {
                    Next();
                    if (IsOp(")"))
                    {
                        Next();
                        return new ListExpr([], true, token.Line, token.Column);
                    }

                    var first = ParseExpression();
                    if (IsOp(")"))
                    {
                        Next();
                        return first;
                    }

                    var items = new List<Expr> { first };
                    while (IsOp(","))
                    {
                        Next();
                        if (IsOp(")"))
                        {
                            break;
                        }

                        items.Add(ParseExpression());
                    }

                    ExpectOp(")");
                    return new ListExpr(items, true, token.Line, token.Column);
                }

            case TokenKind.Operator when token.Value == "[":
                {
                    Next();
                    var items = new List<Expr>();
                    while (!IsOp("]"))
                    {
                        if (items.Count > 0)
                        {
                            ExpectOp(",");
                            if (IsOp("]"))
                            {
                                break;
                            }
                        }

                        items.Add(ParseExpression());
                    }

                    Next();
                    return new ListExpr(items, false, token.Line, token.Column);
                }

            case TokenKind.Operator when token.Value == "{":
                {
                    Next();
                    var items = new List<(Expr, Expr)>();
                    while (!IsOp("}"))
                    {
                        if (items.Count > 0)
                        {
                            ExpectOp(",");
                            if (IsOp("}"))
                            {
                                break;
                            }
                        }

                        var key = ParseExpression();
                        ExpectOp(":");
                        items.Add((key, ParseExpression()));
                    }

                    Next();
                    return new DictExpr(items, token.Line, token.Column);
                }

            default:
                throw Error($"Expected an expression but found {Describe(token)}", token);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var token = Current;
            if (IsOp("."))
            {
                Next();
                if (Current.Kind == TokenKind.Integer)
                {
                    node = new ItemExpr(node, ParsePrimary(), token.Line, token.Column);
                }
                else
                {
                    node = new AttrExpr(node, ExpectName(), token.Line, token.Column);
                }
            }
            else if (IsOp("["))
            {
                Next();
                node = ParseSubscript(node, token);
            }
            else if (IsOp("("))
            {
                Next();
                var (args, kwargs) = ParseArguments();
                node = new CallExpr(node, args, kwargs, node.Line, node.Column);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target, Token at)
    {
        Expr? start = null;
        if (!IsOp(":"))
        {
            start = ParseExpression();
            if (IsOp("]"))
            {
                Next();
                return new ItemExpr(target, start, at.Line, at.Column);
            }
        }

        ExpectOp(":");
        Expr? stop = IsOp(":") || IsOp("]") ? null : ParseExpression();
        Expr? step = null;
        if (IsOp(":"))
        {
            Next();
            step = IsOp("]") ? null : ParseExpression();
        }

        ExpectOp("]");
        return new SliceExpr(target, start, stop, step, at.Line, at.Column);
    }

    /// <summary>Arguments after an opening parenthesis, through the closing one.</summary>
    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (args.Count + kwargs.Count > 0)
            {
                ExpectOp(",");
                if (IsOp(")"))
                {
                    break;
                }
            }

            if (Current.Kind == TokenKind.Name && _tokens[_index + 1].Kind == TokenKind.Operator && _tokens[_index + 1].Value == "=")
            {
                string name = Next().Value;
                Next();
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0)
                {
                    throw Error("A positional argument follows a keyword argument", Current);
                }

                args.Add(ParseExpression());
            }
        }

        Next();
        return (args, kwargs);
    }

    private Expr ParseFilters(Expr node)
    {
        while (true)
        {
            var token = Current;
            if (IsOp("|"))
            {
                Next();
                string name = ExpectName();
                while (IsOp("."))
                {
                    Next();
                    name += "." + ExpectName();
                }

                var args = new List<Expr>();
                var kwargs = new List<(string, Expr)>();
                if (IsOp("("))
                {
                    Next();
                    (args, kwargs) = ParseArguments();
                }

                node = new FilterExpr(node, name, args, kwargs, token.Line, token.Column);
            }
            else if (IsName("is"))
            {
                Next();
                bool negated = false;
                if (IsName("not"))
                {
                    Next();
                    negated = true;
                }

                string name = ExpectName();
                var args = new List<Expr>();
                if (IsOp("("))
                {
                    Next();
                    var (positional, kwargs) = ParseArguments();
                    if (kwargs.Count > 0)
                    {
                        throw Error($"Test '{name}' takes no keyword arguments", token);
                    }

                    args = positional;
                }
                else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                    || (Current.Kind == TokenKind.Name && Current.Value is not ("and" or "or" or "else" or "if" or "is" or "in" or "not")))
                {
                    args.Add(ParsePostfix(ParsePrimary()));
                }

                node = new TestExpr(node, name, args, negated, token.Line, token.Column);
            }
            else if (IsOp("("))
            {
                Next();
                var (args, kwargs) = ParseArguments();
                node = new CallExpr(node, args, kwargs, node.Line, node.Column);
            }
            else
            {
                return node;
            }
        }
    }
}
