;; The secure-aggregation field's vector loops over GF(p), p = 2^32 - 5, on
;; uint32 words, four at a time (field.ts defines them and has the same loops
;; in JavaScript). `common/embed-wat.sh secure-aggregation/wasm/field-ops.wat
;; FIELD_OPS_WASM` assembles it (wat2wasm, from Debian's wabt) into
;; field-ops-wasm.ts. Every function takes byte offsets into this memory and
;; a count of bytes, a multiple of 16.
;;
;; (a + b) mod p: s = a + b wraps mod 2^32; subtract p when the add carried
;; (s < a, unsigned) or s >= p. (a - b) mod p: add p back when a < b.
;; A raw word w is reduced into the field as w - p when w >= p.

(module
  (memory (export "memory") 1)

  ;; add(acc, v, n): acc += v (mod p) in place, for field elements.
  (func (export "add") (param $acc i32) (param $v i32) (param $n i32)
    (local $end i32) (local $P v128) (local $a v128) (local $s v128)
    (local.set $P (i32x4.splat (i32.const 0xFFFFFFFB)))
    (local.set $end (i32.add (local.get $acc) (local.get $n)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $acc) (local.get $end)))
        (local.set $a (v128.load (local.get $acc)))
        (local.set $s (i32x4.add (local.get $a) (v128.load (local.get $v))))
        (v128.store (local.get $acc)
          (i32x4.sub (local.get $s)
            (v128.and (local.get $P) (v128.or (i32x4.lt_u (local.get $s) (local.get $a)) (i32x4.ge_u (local.get $s) (local.get $P))))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $loop))))

  ;; addReduced(acc, w, n, negate): acc += (w mod p), or acc -= (w mod p) when negate is 1, for raw words w.
  (func (export "addReduced") (param $acc i32) (param $w i32) (param $n i32) (param $negate i32)
    (local $end i32) (local $P v128) (local $a v128) (local $r v128) (local $s v128)
    (local.set $P (i32x4.splat (i32.const 0xFFFFFFFB)))
    (local.set $end (i32.add (local.get $acc) (local.get $n)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $acc) (local.get $end)))
        (local.set $a (v128.load (local.get $acc)))
        (local.set $r (v128.load (local.get $w)))
        (local.set $r (i32x4.sub (local.get $r) (v128.and (local.get $P) (i32x4.ge_u (local.get $r) (local.get $P)))))
        (if (local.get $negate)
          (then
            (local.set $s (i32x4.sub (local.get $a) (local.get $r)))
            (local.set $s (i32x4.add (local.get $s) (v128.and (local.get $P) (i32x4.lt_u (local.get $a) (local.get $r))))))
          (else
            (local.set $s (i32x4.add (local.get $a) (local.get $r)))
            (local.set $s (i32x4.sub (local.get $s)
              (v128.and (local.get $P) (v128.or (i32x4.lt_u (local.get $s) (local.get $a)) (i32x4.ge_u (local.get $s) (local.get $P))))))))
        (v128.store (local.get $acc) (local.get $s))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (br $loop))))

  ;; outside(v, n): 1 when some word of the n bytes at v is not a field element (>= p), else 0.
  (func (export "outside") (param $v i32) (param $n i32) (result i32)
    (local $end i32) (local $P v128) (local $bad v128)
    (local.set $P (i32x4.splat (i32.const 0xFFFFFFFB)))
    (local.set $end (i32.add (local.get $v) (local.get $n)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $v) (local.get $end)))
        (local.set $bad (v128.or (local.get $bad) (i32x4.ge_u (v128.load (local.get $v)) (local.get $P))))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $loop)))
    (v128.any_true (local.get $bad)))
)
