#!/bin/sh
# make install into a temporary prefix, then build and run the README's example
# against it with pkg-config alone, as a user of an installed weft would.
# usage: tests/install.sh   (from the top of the tree)
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s install PREFIX="$tmp/usr" >/dev/null
# The README's example, as a user would copy it.
sed -n '/^```c$/,/^```$/p' README.md | sed '1d;$d' > "$tmp/prog.c"
[ -s "$tmp/prog.c" ] || { echo "install: no C example in README.md"; exit 1; }
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
for kind in shared static; do
	flags=$(pkg-config --cflags --libs weft)
	[ "$kind" = static ] && flags=$(pkg-config --static --cflags --libs weft | sed 's/-lweft/-l:libweft.a/')
	cc -o "$tmp/prog-$kind" "$tmp/prog.c" $flags -Wl,-rpath,"$tmp/usr/lib"
	out=$("$tmp/prog-$kind")
	[ "$out" = 3 ] || { echo "install: $kind program printed '$out'"; exit 1; }
done
for f in include/weft.h lib/libweft.so lib/libweft.so.0 lib/libweft.a lib/pkgconfig/weft.pc \
	bin/weft-join bin/weft-gen bin/weft-scheduler bin/weft-worker bin/weft-cluster; do
	[ -e "$tmp/usr/$f" ] || { echo "install: $f missing"; exit 1; }
done
# The installed programs run and agree.
want=$("$tmp/usr/bin/weft-gen" --pair --left "$tmp/l" --right "$tmp/r" --left-rows 100 --rows 300)
got=$("$tmp/usr/bin/weft-join" --left "$tmp/l" --right "$tmp/r" --count --quiet)
[ "$want" = "$got" ] || { echo "install: weft-join printed '$got', weft-gen '$want'"; exit 1; }
# The library exports what weft.map names, and nothing else.
nm -D --defined-only "$tmp/usr/lib/libweft.so" | awk '$2 ~ /[TDBRV]/ { sub(/@.*/, "", $3); print $3 }' |
	grep -v '^WEFT_0$' | sort > "$tmp/exported"
sed -n 's/^[[:space:]]*\(weft_[a-z_]*\);$/\1/p' weft.map | sort > "$tmp/listed"
diff "$tmp/listed" "$tmp/exported" >"$tmp/diff" ||
	{ echo "install: the exports differ from weft.map (< listed, > exported):"; cat "$tmp/diff"; exit 1; }
echo "install: 3 passed, 0 failed"
