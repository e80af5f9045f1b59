#!/bin/bash
# CSV files as people have them: the target column by name or index, string labels, ';' and tab
# separators, quotes, gzip'd data from standard input, --test-fraction, missing values, a
# regression-looking target refused, categorical columns; standardization by default.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAIN=(train --layers 8 --epochs 5 --lr 0.01 --batch-size 16 --threads 1 --quiet)

# Two well separated classes with the label in the first column, as strings; a header.
"$PY" - <<'EOF'
import random
random.seed(3)
rows = []
for i in range(120):
    y = i % 2
    rows.append((["setosa", "virginica"][y], random.gauss(4 * y, 1), random.gauss(-3 * y, 1),
                 random.gauss(1000 * y, 300)))
with open("first.csv", "w") as f:
    f.write("species,x,y,z\n")
    for r in rows:
        f.write("%s,%.4f,%.4f,%.2f\n" % r)
# the same with ';' and decimal commas, quoted names, CRLF
with open("semi.csv", "w") as f:
    f.write('"species";"x";"y";"z"\r\n')
    for r in rows:
        f.write(('"%s";%.4f;%.4f;%.2f\r\n' % r).replace(".", ","))
# tab-separated, no header, the label last as integers 1..2 (two classes, not three)
with open("tab.csv", "w") as f:
    for r in rows:
        f.write("%.4f\t%.4f\t%.2f\t%d\n" % (r[1], r[2], r[3], 1 + (r[0] == "virginica")))
# a regression target: 60 distinct values in 60 rows
with open("reg.csv", "w") as f:
    f.write("a,b,target\n")
    for i in range(60):
        f.write("%d,%d,%d\n" % (i, i % 7, 25 + 5 * i))
EOF

# ---- the target column ----
for target in species 0; do
    rm -rf t-$target
    run "${TRAIN[@]}" --data first.csv --target "$target" --test-fraction 0.25 --out t-$target
    check "--target $target: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "--target $target: 2 classes, 3 features" \
        pytrue "json.load(open('t-$target/config.json'))['classes'] == 2 and json.load(open('t-$target/config.json'))['features'] == 3"
    check "--target $target: 30 test samples held out" \
        pytrue "json.load(open('t-$target/config.json'))['test_samples'] == 30"
    check "--target $target: config.json says how the CSV was read" \
        pytrue "json.load(open('t-$target/config.json'))['target'] == '$target' and json.load(open('t-$target/config.json'))['test_fraction'] == 0.25"
    check "--target $target: learns (test accuracy >= 0.9)" \
        pytrue "json.load(open('t-$target/summary.json'))['test_accuracy'] >= 0.9"
done
# Without --target the last column (z, 120 distinct floats) would be the label: refused, with
# the way out.
expect_exit 1 "label in the last column by default" "${TRAIN[@]}" --data first.csv --out no-target
check "the default target: a regression-looking target is refused, suggesting --task regression" \
    grep -qF "first.csv:2:" "$WORK/stderr"
check "  ... the message names --task regression" grep -qF -- "--task regression" "$WORK/stderr"
check "  ... and writes no run directory" absent no-target
expect_exit 1 "an unknown --target" "${TRAIN[@]}" --data first.csv --target spcies --out x
check "an unknown --target lists the columns" \
    grep -qxF "nabla: first.csv:1: no column 'spcies' for the target; the columns: 0 'species', 1 'x', 2 'y', 3 'z'" "$WORK/stderr"
expect_exit 1 "--target out of range" "${TRAIN[@]}" --data first.csv --target 4 --out x
check "--target 4: no column number 4" grep -qF "no column number '4' for the target" "$WORK/stderr"
absent x || fail "a refused run left its directory"

# ---- many classes: refused, or taken when the user insists ----
expect_exit 1 "an integer target with 60 values in 60 rows" "${TRAIN[@]}" --data reg.csv --out r
check "  ... one line, naming file:line:column and --task regression" \
    grep -qxF "nabla: reg.csv:1:5: the target has 60 distinct values in 60 rows: that looks like a regression target, not classes; use --task regression (or --allow-many-classes to take each value as a class)" "$WORK/stderr"
printf 'a,b\n1,0.5\n2,1.5\n' >frac.csv
expect_exit 1 "a non-integer target" "${TRAIN[@]}" --data frac.csv --out r
check "  ... at its field" grep -qF "frac.csv:2:3: the target '0.5' is not an integer" "$WORK/stderr"
rm -rf many
run "${TRAIN[@]}" --data reg.csv --allow-many-classes --out many
check "--allow-many-classes: 60 classes (stderr: $(head -c 200 "$WORK/stderr"))" \
    pytrue "json.load(open('many/config.json'))['classes'] == 60"

# ---- separators, quotes, headers, gzip, standard input ----
rm -rf semi
run "${TRAIN[@]}" --data semi.csv --target species --out semi
check "';' with decimal commas, quoted header: exit 0 ($(head -c 200 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "  ... 3 features, 2 classes" \
    pytrue "json.load(open('semi/config.json'))['features'] == 3 and json.load(open('semi/config.json'))['classes'] == 2"
gzip -c semi.csv >semi.gz
rm -rf piped
"$NABLA" "${TRAIN[@]}" --data - --target species --test-fraction 0.2 --out piped \
    <semi.gz >"$WORK/stdout" 2>"$WORK/stderr"
check "a ;-separated gzip'd file from standard input: exit 0 ($(head -c 200 "$WORK/stderr"))" \
    [ -f piped/summary.json ]
check "  ... read like the file itself" \
    pytrue "json.load(open('piped/config.json'))['features'] == 3 and json.load(open('piped/config.json'))['test_samples'] == 24"
rm -rf devstdin
cat tab.csv | "$NABLA" "${TRAIN[@]}" --data /dev/stdin --out devstdin >/dev/null 2>"$WORK/stderr"
check "tab-separated from /dev/stdin on a pipe, labels 1..2: two classes ($(head -c 200 "$WORK/stderr"))" \
    pytrue "json.load(open('devstdin/config.json'))['classes'] == 2"
# a named FIFO whose writer comes later: read to its end
mkfifo fifo.csv
rm -rf fifo-run
{ sleep 1; cat first.csv >fifo.csv; } &
run "${TRAIN[@]}" --data fifo.csv --target species --out fifo-run
wait
check "a FIFO: read to its end ($(head -c 200 "$WORK/stderr"))" \
    pytrue "json.load(open('fifo-run/config.json'))['train_samples'] == 120"
rm -rf declared
{ echo "1990,1991,2000,2010"; cat tab.csv | tr '\t' ','; } >numheader.csv
run train --layers 8 --epochs 1 --threads 1 --data numheader.csv --header yes --out declared
check "--header yes: an all-numeric header line is not a sample" \
    pytrue "json.load(open('declared/config.json'))['train_samples'] == 120 and json.load(open('declared/config.json'))['header'] == 'yes'"
check "  ... and the data line says so" \
    grep -qxF "data numheader.csv: 120 samples, 3 features; line 1 is a header (--header yes), not a sample" "$WORK/stdout"
expect_exit 2 "--header maybe" "${TRAIN[@]}" --data first.csv --header maybe --out x
expect_exit 2 "--delimiter '|'" "${TRAIN[@]}" --data first.csv --delimiter '|' --out x
expect_exit 2 "--missing fill" "${TRAIN[@]}" --data first.csv --missing fill --out x
expect_exit 2 "--test-fraction 1" "${TRAIN[@]}" --data first.csv --test-fraction 1 --out x
expect_exit 2 "--test-fraction with --test" "${TRAIN[@]}" --data first.csv --test first.csv --test-fraction 0.2 --out x
expect_exit 2 "--target with a synthetic set" "${TRAIN[@]}" --data moons --target 0 --out x
expect_exit 2 "--test-fraction with an IDX set" "${TRAIN[@]}" --data fashion-mnist --test-fraction 0.1 --out x
absent x || fail "a usage error left a run directory"

# ---- missing values and categories ----
"$PY" - <<'EOF'
import random
random.seed(5)
with open("holes.csv", "w") as f:
    f.write("color,size,weight,label\n")
    for i in range(80):
        y = i % 2
        color = ["red", "blue"][y] if i % 9 else "NA"
        size = "%.3f" % random.gauss(3 * y, 1) if i % 7 else ""
        f.write("%s,%s,%.3f,%s\n" % (color, size, random.gauss(y, 1), ["no", "yes"][y]))
EOF
expect_exit 1 "missing values refused by default" "${TRAIN[@]}" --data holes.csv --out h
check "  ... at file:line:column" grep -qxF "nabla: holes.csv:2:1: field 1 is missing ('NA'; drop such rows or fill them with --missing drop|mean)" "$WORK/stderr"
for m in drop mean; do
    rm -rf h-$m
    run "${TRAIN[@]}" --data holes.csv --missing $m --out h-$m
    check "--missing $m: exit 0 ($(head -c 200 "$WORK/stderr"))" [ "$RC" -eq 0 ]
done
check "--missing drop: the rows with a hole are left out (80 - 9 - 11 + 1 = 61)" \
    pytrue "json.load(open('h-drop/config.json'))['train_samples'] == 61"
check "--missing mean: every row kept; color one-hot (2) + size + weight = 4 features" \
    pytrue "json.load(open('h-mean/config.json'))['train_samples'] == 80 and json.load(open('h-mean/config.json'))['features'] == 4"
# a test set read like the training set: its columns in another order
"$PY" - <<'EOF'
import csv
rows = list(csv.reader(open("holes.csv")))
with open("reordered.csv", "w") as f:
    for r in rows[:30]:
        f.write(",".join([r[3], r[2], r[1], r[0]]) + "\n")
EOF
rm -rf h-test
run "${TRAIN[@]}" --data holes.csv --missing mean --test reordered.csv --out h-test
check "--test with its columns reordered: read by name ($(head -c 200 "$WORK/stderr"))" \
    pytrue "json.load(open('h-test/config.json'))['test_samples'] == 29"
{ head -n 1 holes.csv; echo "green,1.0,0.5,yes"; } >green.csv
expect_exit 1 "a category the training data did not have" "${TRAIN[@]}" --data holes.csv --missing mean --test green.csv --out x
check "  ... named by file:line:column" grep -qxF "nabla: green.csv:2:1: 'green' is not a category of column 'color' in the training data (2 categories)" "$WORK/stderr"
{ head -n 1 holes.csv; echo "red,1.0,0.5,maybe"; } >maybe.csv
expect_exit 1 "a class the training data did not have" "${TRAIN[@]}" --data holes.csv --missing mean --test maybe.csv --out x
check "  ... named by file:line:column" grep -qxF "nabla: maybe.csv:2:13: class 'maybe' is not one of the training data's 2 (no, yes)" "$WORK/stderr"

# ---- standardization by default ----
# z is in the thousands: standardized by default (the model saves the mean and std)
check "the default: standardized" pytrue "json.load(open('t-species/config.json'))['normalize'] == 'standard'"
rm -rf raw
run "${TRAIN[@]}" --data first.csv --target species --normalize none --out raw
check "--normalize none: as read" pytrue "json.load(open('raw/config.json'))['normalize'] == 'none'"
rm -rf moons-default
run train --data moons --samples 200 --layers 8 --epochs 1 --threads 1 --quiet --out moons-default
check "a synthetic set is standardized by default too" \
    pytrue "json.load(open('moons-default/config.json'))['normalize'] == 'standard'"

# ---- resume reads the data as the run did ----
rm -rf res
run "${TRAIN[@]}" --data first.csv --target species --test-fraction 0.25 --epochs 2 --out res
run train --resume res --epochs 4 --threads 1 --quiet
check "--resume of a run with --target and --test-fraction: exit 0 ($(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "  ... the same split (30 test samples)" pytrue "json.load(open('res/config.json'))['test_samples'] == 30"

finish
