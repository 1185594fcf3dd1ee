;; BM25's dense sums (lib/core/bm25-sums.ts): the two loops of Bm25Corpus.searchExpanded that
;; read every posting of a query's common words, and its top-k scan's test of a block's scores
;; against the floor, in WebAssembly. `npm run build:wasm` compiles
;; this file into bm25-sums.wasm.ts, and a test checks that the two agree.
;;
;; Every address is a byte offset into the module's one memory, which the caller lays out.
(module
  (memory (export "memory") 1)

  ;; For i in [0, n): scores[slots[i]] = scores[slots[i]] + w * impacts[i], in that order. The
  ;; same operations as the JavaScript loop (a multiply, then an add, of doubles: WebAssembly
  ;; does not fuse them), so the same sums to the bit.
  ;;   slots: n int32 at `slots`; impacts: n float64 at `impacts`; scores: float64 per slot at `scores`.
  (func (export "add") (param $slots i32) (param $impacts i32) (param $n i32) (param $w f64) (param $scores i32)
    (local $i i32)
    (local $at i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $posting
        (local.set $at
          (i32.add (local.get $scores)
            (i32.shl (i32.load (i32.add (local.get $slots) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 3))))
        (f64.store (local.get $at)
          (f64.add
            (f64.load (local.get $at))
            (f64.mul (local.get $w) (f64.load (i32.add (local.get $impacts) (i32.shl (local.get $i) (i32.const 3)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $posting (i32.lt_u (local.get $i) (local.get $n)))
      )
    )
  )

  ;; add, and each posting's block keeps its best: maxes[slots[i] >> 8] = max(that, the new sum).
  ;; Sums only grow (positive weights times positive impacts), so after blockMaxes over the
  ;; sums before, this keeps every block's best what blockMaxes over the sums after would find,
  ;; without reading the blocks no posting reached.
  ;;   maxes: one float64 per block of 256 slots, at `maxes`.
  (func (export "addMax") (param $slots i32) (param $impacts i32) (param $n i32) (param $w f64) (param $scores i32) (param $maxes i32)
    (local $i i32)
    (local $slot i32)
    (local $at i32)
    (local $sum f64)
    (local $best i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $posting
        (local.set $slot (i32.load (i32.add (local.get $slots) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $at (i32.add (local.get $scores) (i32.shl (local.get $slot) (i32.const 3))))
        (local.set $sum
          (f64.add
            (f64.load (local.get $at))
            (f64.mul (local.get $w) (f64.load (i32.add (local.get $impacts) (i32.shl (local.get $i) (i32.const 3)))))))
        (f64.store (local.get $at) (local.get $sum))
        (local.set $best (i32.add (local.get $maxes) (i32.shl (i32.shr_u (local.get $slot) (i32.const 8)) (i32.const 3))))
        (f64.store (local.get $best) (f64.max (f64.load (local.get $best)) (local.get $sum)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $posting (i32.lt_u (local.get $i) (local.get $n)))
      )
    )
  )

  ;; For each of `blocks` blocks of 256 slots (2048 bytes of scores, MAX_SHIFT = 8 in bm25.ts):
  ;; out[k] = the largest score of block k, or 0 when none is above 0. Scores are never negative
  ;; nor NaN (positive weights times positive impacts), so pmax's order of operands does not
  ;; matter. The scores must be there for whole blocks: the caller's region is.
  (func (export "blockMaxes") (param $scores i32) (param $blocks i32) (param $out i32)
    (local $k i32)
    (local $at i32)
    (local $end i32)
    (local $best v128)
    (block $done
      (br_if $done (i32.eqz (local.get $blocks)))
      (loop $block
        (local.set $at (i32.add (local.get $scores) (i32.shl (local.get $k) (i32.const 11))))
        (local.set $end (i32.add (local.get $at) (i32.const 2048)))
        (local.set $best (f64x2.splat (f64.const 0)))
        (loop $four
          (local.set $best (f64x2.pmax (local.get $best) (v128.load (local.get $at))))
          (local.set $best (f64x2.pmax (local.get $best) (v128.load offset=16 (local.get $at))))
          (local.set $best (f64x2.pmax (local.get $best) (v128.load offset=32 (local.get $at))))
          (local.set $best (f64x2.pmax (local.get $best) (v128.load offset=48 (local.get $at))))
          (local.set $at (i32.add (local.get $at) (i32.const 64)))
          (br_if $four (i32.lt_u (local.get $at) (local.get $end)))
        )
        (f64.store
          (i32.add (local.get $out) (i32.shl (local.get $k) (i32.const 3)))
          (f64.max (f64x2.extract_lane 0 (local.get $best)) (f64x2.extract_lane 1 (local.get $best))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $block (i32.lt_u (local.get $k) (local.get $blocks)))
      )
    )
  )

  ;; The slots of [from, to) whose score is at least `floor`, in order, as int32 at `out`; answers
  ;; how many. bestReached's scan of a block whose best reaches its floor: most of a block's
  ;; slots are below it, and this tests eight scores at a time (four two-lane comparisons) and
  ;; looks at the eight one by one only when one of them passes. `from` and `to` are multiples
  ;; of 8 within the score region (the slots past a corpus's end score 0, below any floor the
  ;; caller passes: it is above 0). `out` has room for to - from slots.
  (func (export "above") (param $scores i32) (param $from i32) (param $to i32) (param $floor f64) (param $out i32) (result i32)
    (local $at i32)
    (local $end i32)
    (local $limit v128)
    (local $n i32)
    (local $slot i32)
    (local.set $at (i32.add (local.get $scores) (i32.shl (local.get $from) (i32.const 3))))
    (local.set $end (i32.add (local.get $scores) (i32.shl (local.get $to) (i32.const 3))))
    (local.set $limit (f64x2.splat (local.get $floor)))
    (local.set $slot (local.get $from))
    (block $done
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (loop $eight
        (if (v128.any_true
              (v128.or
                (v128.or
                  (f64x2.ge (v128.load (local.get $at)) (local.get $limit))
                  (f64x2.ge (v128.load offset=16 (local.get $at)) (local.get $limit)))
                (v128.or
                  (f64x2.ge (v128.load offset=32 (local.get $at)) (local.get $limit))
                  (f64x2.ge (v128.load offset=48 (local.get $at)) (local.get $limit)))))
          (then
            (call $keep (local.get $at) (local.get $slot) (local.get $floor) (local.get $out) (local.get $n))
            (local.set $n)))
        (local.set $at (i32.add (local.get $at) (i32.const 64)))
        (local.set $slot (i32.add (local.get $slot) (i32.const 8)))
        (br_if $eight (i32.lt_u (local.get $at) (local.get $end)))
      )
    )
    (local.get $n)
  )

  ;; above's look at eight scores from `at` (slots from `slot`): appends those at least `floor`
  ;; to `out` after the `n` there, and answers the new count.
  (func $keep (param $at i32) (param $slot i32) (param $floor f64) (param $out i32) (param $n i32) (result i32)
    (local $i i32)
    (loop $one
      (if (f64.ge (f64.load (i32.add (local.get $at) (i32.shl (local.get $i) (i32.const 3)))) (local.get $floor))
        (then
          (i32.store (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $slot) (local.get $i)))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $one (i32.lt_u (local.get $i) (i32.const 8)))
    )
    (local.get $n)
  )
)
