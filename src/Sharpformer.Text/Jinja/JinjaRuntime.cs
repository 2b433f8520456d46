using System.Diagnostics;
using System.Text;

namespace Sharpformer.Text.Jinja;

/// <summary>Walks the parsed template: statements write output, expressions evaluate with Python's semantics.</summary>
internal sealed class JinjaRuntime(JinjaLimits limits, Stopwatch clock)
{
    private const long MaxRepeat = 10_000_000;
    private static readonly Dictionary<string, object?> NoKwargs = [];
    private int _steps;
    private int _depth;

    private sealed class LoopControl(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    public static void AddBuiltins(Dictionary<string, object?> globals)
    {
        globals["raise_exception"] = new Callable("raise_exception", (args, _) =>
            throw new JinjaRaisedException(args.Count > 0 ? PyValues.Str(args[0]) : "raise_exception was called", 0, 0));
        globals["namespace"] = new Callable("namespace", (args, kwargs) =>
        {
            var ns = new Namespace();
            foreach (var arg in args)
            {
                if (arg is Dictionary<string, object?> initial)
                {
                    foreach (var (k, v) in initial)
                    {
                        ns[k] = v;
                    }
                }
            }

            foreach (var (k, v) in kwargs)
            {
                ns[k] = v;
            }

            return ns;
        });
        globals["dict"] = new Callable("dict", (_, kwargs) => new Dictionary<string, object?>(kwargs));
        globals["range"] = new Callable("range", (args, _) =>
        {
            long start = 0, stop, step = 1;
            if (args.Count == 1)
            {
                stop = PyValues.ToLong(args[0]);
            }
            else if (args.Count is 2 or 3)
            {
                start = PyValues.ToLong(args[0]);
                stop = PyValues.ToLong(args[1]);
                step = args.Count == 3 ? PyValues.ToLong(args[2]) : 1;
            }
            else
            {
                throw new InvalidOperationException("range() takes 1 to 3 arguments");
            }

            if (step == 0)
            {
                throw new InvalidOperationException("range() step must not be zero");
            }

            var result = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                if (result.Count >= 1_000_000)
                {
                    throw new InvalidOperationException("range() of more than 1,000,000 items");
                }

                result.Add(i);
            }

            return result;
        });
    }

    private static JinjaException Error(string message, Node at) =>
        new($"{message} at line {at.Line}, column {at.Column}", at.Line, at.Column);

    private void Step(Node at)
    {
        if (++_steps > limits.MaxSteps)
        {
            throw Error($"Template stopped: more than {limits.MaxSteps} steps (JinjaLimits.MaxSteps)", at);
        }

        if ((_steps & 1023) == 0 && clock.Elapsed > limits.Timeout)
        {
            throw Error($"Template stopped: rendering took longer than {limits.Timeout.TotalSeconds:0.###} s (JinjaLimits.Timeout)", at);
        }
    }

    private void Write(StringBuilder output, string text, Node at)
    {
        if (output.Length + text.Length > limits.MaxOutputLength)
        {
            throw Error($"Template stopped: output longer than {limits.MaxOutputLength} characters (JinjaLimits.MaxOutputLength)", at);
        }

        output.Append(text);
    }

    public void Execute(List<Node> body, Scope scope, StringBuilder output)
    {
        foreach (var node in body)
        {
            Step(node);
            switch (node)
            {
                case TextNode text:
                    Write(output, text.Text, node);
                    break;
                case OutputNode print:
                    Write(output, PyValues.Str(Eval(print.Value, scope)), node);
                    break;
                case IfNode conditional:
                    {
                        bool taken = false;
                        foreach (var (condition, branch) in conditional.Branches)
                        {
                            if (PyValues.Truthy(Eval(condition, scope)))
                            {
                                Execute(branch, scope, output);
                                taken = true;
                                break;
                            }
                        }

                        if (!taken && conditional.Else is { } otherwise)
                        {
                            Execute(otherwise, scope, output);
                        }

                        break;
                    }

                case ForNode loop:
                    ExecuteFor(loop, scope, output);
                    break;
                case SetNode set:
                    ExecuteSet(set, scope);
                    break;
                case MacroNode macro:
                    scope.Variables[macro.Name] = MakeMacro(macro, scope);
                    break;
                case BodyNode block:
                    Execute(block.Body, scope, output);
                    break;
                case LoopControlNode control:
                    throw new LoopControl(control.IsBreak);
                default:
                    throw Error($"Unsupported node {node.GetType().Name}", node);
            }
        }
    }

    private void ExecuteSet(SetNode set, Scope scope)
    {
        object? value;
        if (set.Body is { } body)
        {
            var captured = new StringBuilder();
            Execute(body, scope, captured);
            value = captured.ToString();
        }
        else
        {
            value = Eval(set.Value!, scope);
        }

        if (set.Attribute is { } attribute)
        {
            if (!scope.TryGet(set.Targets[0], out var target) || target is not Namespace ns)
            {
                throw Error($"Cannot assign attribute '{attribute}' on '{set.Targets[0]}': only a namespace() object takes 'set {set.Targets[0]}.{attribute} = ...'", set);
            }

            ns[attribute] = value;
            return;
        }

        if (set.Targets.Count == 1)
        {
            scope.Variables[set.Targets[0]] = value;
            return;
        }

        var items = Unpack(value, set.Targets.Count, set);
        for (int i = 0; i < items.Count; i++)
        {
            scope.Variables[set.Targets[i]] = items[i];
        }
    }

    private static List<object?> Unpack(object? value, int count, Node at)
    {
        var items = Iterate(value, at);
        if (items.Count != count)
        {
            throw Error($"Cannot unpack {items.Count} values into {count} names", at);
        }

        return items;
    }

    private void ExecuteFor(ForNode loop, Scope scope, StringBuilder output)
    {
        var all = Iterate(Eval(loop.Iterable, scope), loop.Iterable);
        var items = new List<object?>();
        foreach (var item in all)
        {
            if (loop.Filter is null)
            {
                items.Add(item);
                continue;
            }

            var filterScope = new Scope([], scope);
            Bind(loop, filterScope, item);
            if (PyValues.Truthy(Eval(loop.Filter, filterScope)))
            {
                items.Add(item);
            }
        }

        if (items.Count == 0)
        {
            if (loop.Else is { } otherwise)
            {
                Execute(otherwise, scope, output);
            }

            return;
        }

        for (int i = 0; i < items.Count; i++)
        {
            var body = new Scope([], scope);
            Bind(loop, body, items[i]);
            int index = i;
            body.Variables["loop"] = new Dictionary<string, object?>
            {
                ["index0"] = (long)i,
                ["index"] = (long)(i + 1),
                ["revindex0"] = (long)(items.Count - i - 1),
                ["revindex"] = (long)(items.Count - i),
                ["first"] = i == 0,
                ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count,
                ["depth"] = 1L,
                ["depth0"] = 0L,
                ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
                ["nextitem"] = i < items.Count - 1 ? items[i + 1] : new Undefined("loop.nextitem"),
                ["cycle"] = new Callable("loop.cycle", (args, _) => args.Count == 0
                    ? throw new InvalidOperationException("loop.cycle() needs at least one value")
                    : args[index % args.Count]),
            };
            try
            {
                Execute(loop.Body, body, output);
            }
            catch (LoopControl control)
            {
                if (control.IsBreak)
                {
                    break;
                }
            }
        }
    }

    private static void Bind(ForNode loop, Scope scope, object? item)
    {
        if (loop.Targets.Count == 1)
        {
            scope.Variables[loop.Targets[0]] = item;
            return;
        }

        var values = Unpack(item, loop.Targets.Count, loop);
        for (int i = 0; i < values.Count; i++)
        {
            scope.Variables[loop.Targets[i]] = values[i];
        }
    }

    private Callable MakeMacro(MacroNode macro, Scope definedIn) => new(macro.Name, (args, kwargs) =>
    {
        if (args.Count > macro.Parameters.Count)
        {
            throw Error($"Macro '{macro.Name}' takes {macro.Parameters.Count} arguments but got {args.Count}", macro);
        }

        if (++_depth > limits.MaxCallDepth)
        {
            throw Error($"Template stopped: macro calls nested deeper than {limits.MaxCallDepth} (JinjaLimits.MaxCallDepth)", macro);
        }

        try
        {
            var scope = new Scope([], definedIn);
            for (int i = 0; i < macro.Parameters.Count; i++)
            {
                var (name, defaultValue) = macro.Parameters[i];
                scope.Variables[name] = i < args.Count ? args[i]
                    : kwargs.TryGetValue(name, out var given) ? given
                    : defaultValue is null ? new Undefined(name) : Eval(defaultValue, scope);
            }

            var output = new StringBuilder();
            Execute(macro.Body, scope, output);
            return output.ToString();
        }
        finally
        {
            _depth--;
        }
    });

    private static List<object?> Iterate(object? value, Node at) => value switch
    {
        List<object?> list => list,
        Dictionary<string, object?> dictionary => dictionary.Keys.Cast<object?>().ToList(),
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        Undefined => [],
        _ => throw Error($"'{PyValues.TypeName(value)}' object is not iterable", at),
    };

    public object? Eval(Expr expr, Scope scope)
    {
        Step(expr);
        try
        {
            var value = EvalCore(expr, scope);
            if ((value is string s && s.Length > limits.MaxOutputLength) || (value is List<object?> list && list.Count > limits.MaxOutputLength))
            {
                throw Error($"Template stopped: a value larger than {limits.MaxOutputLength} characters or items (JinjaLimits.MaxOutputLength)", expr);
            }

            return value;
        }
        catch (Exception e) when (e is not JinjaException and not LoopControl)
        {
            // Python-level errors (a bad operand, a value that is not iterable, ...) become template errors with the position.
            throw Error(e.Message, expr);
        }
        catch (JinjaRaisedException e) when (e.Line == 0)
        {
            throw new JinjaRaisedException(e.Message, expr.Line, expr.Column);
        }
    }

    private object? EvalCore(Expr expr, Scope scope)
    {
        switch (expr)
        {
            case ConstExpr constant:
                return constant.Value;
            case NameExpr name:
                return scope.TryGet(name.Name, out var value) ? value : new Undefined(name.Name);
            case ListExpr list:
                return list.IsTuple ? new PyTuple(list.Items.Select(item => Eval(item, scope))) : list.Items.Select(item => Eval(item, scope)).ToList();
            case DictExpr dictionary:
                {
                    var result = new Dictionary<string, object?>();
                    foreach (var (key, item) in dictionary.Items)
                    {
                        result[PyValues.Str(Eval(key, scope))] = Eval(item, scope);
                    }

                    return result;
                }

            case AttrExpr attribute:
                return GetAttribute(Eval(attribute.Target, scope), attribute.Name, attribute);
            case ItemExpr item:
                return GetItem(Eval(item.Target, scope), Eval(item.Index, scope), item);
            case SliceExpr slice:
                return Slice(Eval(slice.Target, scope), slice.Start is null ? null : Eval(slice.Start, scope),
                    slice.Stop is null ? null : Eval(slice.Stop, scope), slice.Step is null ? null : Eval(slice.Step, scope));
            case CallExpr call:
                {
                    var target = Eval(call.Target, scope);
                    var args = call.Args.Select(a => Eval(a, scope)).ToList();
                    var kwargs = call.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope));
                    return target switch
                    {
                        Callable callable => callable.Invoke(args, kwargs),
                        Undefined undefined => throw new InvalidOperationException($"'{undefined.Name}' is undefined"),
                        _ => throw new InvalidOperationException($"'{PyValues.TypeName(target)}' object is not callable"),
                    };
                }

            case FilterExpr filter:
                return JinjaFilters.Apply(this, filter, Eval(filter.Target, scope), filter.Args.Select(a => Eval(a, scope)).ToList(),
                    filter.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope)));
            case TestExpr test:
                {
                    bool result = JinjaFilters.Test(test.Name, Eval(test.Target, scope), test.Args.Select(a => Eval(a, scope)).ToList(), test, scope);
                    return test.Negated ? !result : result;
                }

            case UnaryExpr unary:
                {
                    var operand = Eval(unary.Operand, scope);
                    return unary.Op switch
                    {
                        "not" => !PyValues.Truthy(operand),
                        "-" => operand switch
                        {
                            long l => (object?)(-l),
                            double d => -d,
                            bool b => b ? -1L : 0L,
                            _ => throw new InvalidOperationException($"bad operand type for unary -: '{PyValues.TypeName(operand)}'"),
                        },
                        _ => PyValues.IsNumber(operand) ? operand : throw new InvalidOperationException($"bad operand type for unary +: '{PyValues.TypeName(operand)}'"),
                    };
                }

            case BinaryExpr binary when binary.Op == "and":
                {
                    var left = Eval(binary.Left, scope);
                    return PyValues.Truthy(left) ? Eval(binary.Right, scope) : left;
                }

            case BinaryExpr binary when binary.Op == "or":
                {
                    var left = Eval(binary.Left, scope);
                    return PyValues.Truthy(left) ? left : Eval(binary.Right, scope);
                }

            case BinaryExpr binary:
                return Arithmetic(binary.Op, Eval(binary.Left, scope), Eval(binary.Right, scope));
            case CompareExpr compare:
                {
                    var left = Eval(compare.First, scope);
                    foreach (var (op, operandExpr) in compare.Rest)
                    {
                        var right = Eval(operandExpr, scope);
                        if (!Compare(op, left, right))
                        {
                            return false;
                        }

                        left = right;
                    }

                    return true;
                }

            case CondExpr conditional:
                return PyValues.Truthy(Eval(conditional.Condition, scope)) ? Eval(conditional.Then, scope)
                    : conditional.Else is null ? new Undefined("conditional expression") : Eval(conditional.Else, scope);
            default:
                throw Error($"Unsupported expression {expr.GetType().Name}", expr);
        }
    }

    public static bool Compare(string op, object? left, object? right)
    {
        switch (op)
        {
            case "==":
                return PyValues.Equals(left, right);
            case "!=":
                return !PyValues.Equals(left, right);
            case "in":
                return Contains(right, left);
            case "not in":
                return !Contains(right, left);
        }

        int order;
        if (PyValues.IsNumber(left) && PyValues.IsNumber(right))
        {
            order = PyValues.ToDouble(left).CompareTo(PyValues.ToDouble(right));
        }
        else if (left is string a && right is string b)
        {
            order = string.CompareOrdinal(a, b);
        }
        else
        {
            throw new InvalidOperationException($"'{op}' not supported between instances of '{PyValues.TypeName(left)}' and '{PyValues.TypeName(right)}'");
        }

        return op switch
        {
            "<" => order < 0,
            ">" => order > 0,
            "<=" => order <= 0,
            _ => order >= 0,
        };
    }

    private static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string part => s.Contains(part, StringComparison.Ordinal),
        string => throw new InvalidOperationException($"'in <string>' requires string as left operand, not {PyValues.TypeName(item)}"),
        List<object?> list => list.Any(x => PyValues.Equals(x, item)),
        Dictionary<string, object?> dictionary => item is string key && dictionary.ContainsKey(key),
        Undefined => false,
        _ => throw new InvalidOperationException($"argument of type '{PyValues.TypeName(container)}' is not iterable"),
    };

    private static object? Arithmetic(string op, object? left, object? right)
    {
        if (op == "~")
        {
            return PyValues.Str(left) + PyValues.Str(right);
        }

        if (left is Undefined undefinedLeft)
        {
            throw new InvalidOperationException($"'{undefinedLeft.Name}' is undefined");
        }

        if (right is Undefined undefinedRight)
        {
            throw new InvalidOperationException($"'{undefinedRight.Name}' is undefined");
        }

        if (PyValues.IsNumber(left) && PyValues.IsNumber(right))
        {
            bool floating = left is double || right is double || op is "/";
            if (op == "**" && !floating && PyValues.ToLong(right) < 0)
            {
                floating = true;
            }

            if (floating)
            {
                double a = PyValues.ToDouble(left), b = PyValues.ToDouble(right);
                if (b == 0 && op is "/" or "//" or "%")
                {
                    throw new InvalidOperationException("division by zero");
                }

                return op switch
                {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => a / b,
                    "//" => Math.Floor(a / b),
                    "%" => a - (b * Math.Floor(a / b)),
                    _ => Math.Pow(a, b),
                };
            }

            long x = PyValues.ToLong(left), y = PyValues.ToLong(right);
            if (y == 0 && op is "//" or "%")
            {
                throw new InvalidOperationException("integer division or modulo by zero");
            }

            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "//" => FloorDiv(x, y),
                "%" => x - (y * FloorDiv(x, y)),
                _ => (long)Math.Pow(x, y),
            };
        }

        if (op == "*" && left is string or List<object?> && right is long count)
        {
            long size = left is string text ? text.Length : ((List<object?>)left!).Count;
            if (count > 0 && size * count > MaxRepeat)
            {
                throw new InvalidOperationException($"repetition would make {size * count} characters or items (at most {MaxRepeat})");
            }
        }

        return (op, left, right) switch
        {
            ("+", string a, string b) => a + b,
            ("+", List<object?> a, List<object?> b) => a.Concat(b).ToList(),
            ("*", string a, long n) => string.Concat(Enumerable.Repeat(a, (int)Math.Max(0, n))),
            ("*", List<object?> a, long n) => Enumerable.Repeat(a, (int)Math.Max(0, n)).SelectMany(x => x).ToList(),
            ("%", string, _) => throw new InvalidOperationException("Python %-formatting of strings is not supported; use ~ or + to build strings"),
            _ => throw new InvalidOperationException($"unsupported operand type(s) for {op}: '{PyValues.TypeName(left)}' and '{PyValues.TypeName(right)}'"),
        };
    }

    private static long FloorDiv(long x, long y)
    {
        long q = x / y;
        return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q;
    }

    public static object? GetAttribute(object? target, string name, Node at)
    {
        switch (target)
        {
            case Undefined undefined:
                throw Error($"'{undefined.Name}' is undefined (reading .{name})", at);
            case Namespace ns:
                return ns.TryGetValue(name, out var nsValue) ? nsValue : new Undefined(name);
            case Dictionary<string, object?> dictionary:
                if (JinjaFilters.DictionaryMethod(dictionary, name) is { } dictMethod)
                {
                    return dictMethod;
                }

                return dictionary.TryGetValue(name, out var value) ? value : new Undefined(name);
            case string s:
                return (object?)JinjaFilters.StringMethod(s, name) ?? new Undefined(name);
            case List<object?> when name is "append" or "extend" or "pop" or "insert" or "remove" or "clear" or "sort" or "reverse":
                throw Error($"Lists are immutable in chat templates (transformers renders them in an immutable sandbox): .{name}() is not allowed", at);
            default:
                return new Undefined(name);
        }
    }

    private static object? GetItem(object? target, object? key, Node at)
    {
        switch (target)
        {
            case Undefined undefined:
                throw Error($"'{undefined.Name}' is undefined (reading [{PyValues.Repr(key)}])", at);
            case List<object?> list when key is long or bool:
                {
                    long index = PyValues.ToLong(key);
                    if (index < 0)
                    {
                        index += list.Count;
                    }

                    return index >= 0 && index < list.Count ? list[(int)index] : new Undefined($"[{PyValues.Repr(key)}]");
                }

            case string s when key is long:
                {
                    long index = (long)key;
                    if (index < 0)
                    {
                        index += s.Length;
                    }

                    return index >= 0 && index < s.Length ? s[(int)index].ToString() : new Undefined($"[{index}]");
                }

            case Dictionary<string, object?> dictionary when key is string name:
                return dictionary.TryGetValue(name, out var value) ? value : GetAttribute(target, name, at);
            default:
                return key is string attribute ? GetAttribute(target, attribute, at) : new Undefined($"[{PyValues.Repr(key)}]");
        }
    }

    private static object? Slice(object? target, object? start, object? stop, object? step)
    {
        int length = target switch
        {
            List<object?> list => list.Count,
            string s => s.Length,
            _ => throw new InvalidOperationException($"'{PyValues.TypeName(target)}' object is not subscriptable"),
        };
        long stepValue = step is null ? 1 : PyValues.ToLong(step);
        if (stepValue == 0)
        {
            throw new InvalidOperationException("slice step cannot be zero");
        }

        long Clamp(object? bound, long defaultValue)
        {
            if (bound is null)
            {
                return defaultValue;
            }

            long b = PyValues.ToLong(bound);
            if (b < 0)
            {
                b += length;
            }

            return stepValue > 0 ? Math.Clamp(b, 0, length) : Math.Clamp(b, -1, length - 1);
        }

        long from = Clamp(start, stepValue > 0 ? 0 : length - 1);
        long to = Clamp(stop, stepValue > 0 ? length : -1);
        var indices = new List<int>();
        for (long i = from; stepValue > 0 ? i < to : i > to; i += stepValue)
        {
            indices.Add((int)i);
        }

        return target is string text
            ? string.Concat(indices.Select(i => text[i]))
            : indices.Select(i => ((List<object?>)target)[i]).ToList();
    }

    /// <summary>Calls a filter by name from another filter (map, select).</summary>
    public object? CallFilter(string name, object? value, List<object?> args, Node at) =>
        JinjaFilters.Apply(this, new FilterExpr(new ConstExpr(null, at.Line, at.Column), name, [], [], at.Line, at.Column), value, args, NoKwargs);
}
