/*
 * identity.c
 *		Match keys and name similarity for duplicate detection.
 *
 * crm.match_key(text) transliterates any script to Latin with the ICU
 * transform "Any-Latin; Latin-ASCII", case-folds, drops apostrophes and
 * combining marks, turns every other non-alphanumeric run into one space and
 * trims, so "José Núñez", "JOSE NUNEZ" and "Jose  Nunez" share the key
 * "jose nunez" and a Cyrillic or Telugu name gets a stable Latin key.
 *
 * crm.name_similarity(a, b) is the Jaro-Winkler similarity of the two match
 * keys, taking the best of three forms of each key: as is, with its words
 * sorted (so "Nunez Jose" matches "Jose Nunez"), and a romanisation skeleton
 * (doubled letters collapsed, y and j read as i, h after a consonant and the
 * e of German ae/oe/ue dropped) so that "Reddy" matches the ICU
 * transliteration "reddi" of the Telugu spelling.
 *
 * The transliterators are opened once per backend and cached.  Strings that
 * are pure ASCII never reach ICU (the transform is the identity on them), and
 * strings in Latin script only go through "Latin-ASCII" alone (Any-Latin is
 * the identity on Latin script), which is several times faster.  Long input
 * is transliterated in chunks cut at white space, with interrupt checks, so
 * a megabyte of text takes milliseconds and bounded memory.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>
#include <unicode/utrans.h>

#include "crm.h"

/* Transliteration works on chunks of about this many UTF-16 units */
#define KEY_CHUNK			2048

/* Names longer than this many code points are compared on their start */
#define SIMILARITY_MAX_LEN	256

static UTransliterator *any_latin = NULL;
static UTransliterator *latin_ascii = NULL;

/* Open (once per backend) the transliterator with the given ICU id */
static UTransliterator *
open_translit(UTransliterator **cache, const char *id)
{
	UErrorCode	status = U_ZERO_ERROR;
	UChar		uid[64];
	UParseError perr;

	if (*cache)
		return *cache;
	u_uastrcpy(uid, id);
	*cache = utrans_openU(uid, -1, UTRANS_FORWARD, NULL, 0, &perr, &status);
	if (U_FAILURE(status))
	{
		*cache = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not open ICU transliterator \"%s\": %s", id, u_errorName(status)),
				 errhint("Check that the ICU data library is installed.")));
	}
	return *cache;
}

/* Is this an apostrophe-like character, dropped without splitting words? */
static inline bool
is_apostrophe(UChar32 c)
{
	return c == 0x27 || c == 0x60 || c == 0xB4 || c == 0x2018 || c == 0x2019 ||
		c == 0x02B9 || c == 0x02BA || c == 0x02BB || c == 0x02BC || c == 0x02BD ||
		c == 0xFF07;
}

/* Key-building state carried across chunks */
typedef struct KeyBuf
{
	StringInfoData out;			/* the key so far, UTF-8 */
	bool		pending_space;	/* a separator was seen since the last letter */
} KeyBuf;

/* Append one code point of transliterated text to the key */
static inline void
key_add(KeyBuf *kb, UChar32 c)
{
	int8		type;

	if (c < 0x80)
	{
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			;
		else if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		else
		{
			if (!is_apostrophe(c))
				kb->pending_space = true;
			return;
		}
	}
	else
	{
		type = u_charType(c);
		if (type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK ||
			type == U_COMBINING_SPACING_MARK || type == U_MODIFIER_LETTER ||
			is_apostrophe(c) || c == 0xFEFF || type == U_FORMAT_CHAR)
			return;
		if (!u_isalnum(c))
		{
			kb->pending_space = true;
			return;
		}
		c = u_foldCase(c, U_FOLD_CASE_DEFAULT);
	}
	if (kb->pending_space && kb->out.len > 0)
		appendStringInfoChar(&kb->out, ' ');
	kb->pending_space = false;
	if (c < 0x80)
		appendStringInfoChar(&kb->out, (char) c);
	else
	{
		uint8		buf[4];
		int32		n = 0;

		U8_APPEND_UNSAFE(buf, n, c);
		appendBinaryStringInfo(&kb->out, (char *) buf, n);
	}
}

/* Transliterate a run of UTF-16 into a palloc'd buffer; return its length */
static int32
translit(UTransliterator *tr, const UChar *src, int32 len, UChar **out)
{
	int32		cap = len * 4 + 16;

	for (;;)
	{
		UErrorCode	status = U_ZERO_ERROR;
		UChar	   *work = palloc(cap * sizeof(UChar));
		int32		textlen = len;
		int32		limit = len;

		memcpy(work, src, len * sizeof(UChar));
		utrans_transUChars(tr, work, &textlen, cap, 0, &limit, &status);
		if (status == U_BUFFER_OVERFLOW_ERROR)
		{
			pfree(work);
			cap *= 2;
			continue;
		}
		if (U_FAILURE(status))
			elog(ERROR, "ICU transliteration failed: %s", u_errorName(status));
		*out = work;
		return textlen;
	}
}

/* Feed a UTF-16 buffer to the key, code point by code point */
static void
key_add_uchars(KeyBuf *kb, const UChar *u, int32 len)
{
	int32		i = 0;

	while (i < len)
	{
		UChar32		c;

		U16_NEXT(u, i, len, c);
		key_add(kb, c);
	}
}

/*
 * Latin letters outside ASCII: Latin-ASCII of each code point, computed once
 * per backend.  Latin-ASCII's only context rules choose between "AE" and
 * "Ae" by the case of the next letter, which case folding makes moot, so the
 * table gives the same key as transliterating the whole word.
 */
typedef struct LatinEntry
{
	int8		len;			/* -1 until computed */
	UChar		out[7];
} LatinEntry;

static LatinEntry *latin_table = NULL;

/* Index of a code point in latin_table, or -1 if the table does not cover it */
static inline int
latin_index(UChar32 c)
{
	if (c >= 0x80 && c < 0x250)
		return c - 0x80;
	if (c >= 0x1E00 && c < 0x1F00)
		return (0x250 - 0x80) + (c - 0x1E00);
	return -1;
}

#define LATIN_TABLE_SIZE	((0x250 - 0x80) + 0x100)

/*
 * Does Any-Latin leave this code point alone?  It does on Latin script and on
 * the characters shared by every script (Common: punctuation, symbols; and
 * Inherited: combining marks), so a word made of these needs Latin-ASCII only.
 */
static inline bool
latin_script(UChar32 c)
{
	UErrorCode	status = U_ZERO_ERROR;
	UScriptCode sc = uscript_getScript(c, &status);

	return sc == USCRIPT_LATIN || sc == USCRIPT_COMMON || sc == USCRIPT_INHERITED;
}

/*
 * A code point of a Latin word outside the table: marks and punctuation
 * reach the key as they are (it drops the first and splits at the second);
 * anything else (letters of the rarer Latin blocks, symbols) goes through
 * Latin-ASCII on its own, uncached, as these are rare in names.
 */
static void
key_add_rare_latin(KeyBuf *kb, UChar32 c)
{
	UChar		src[2];
	int32		n = 0;
	UChar	   *res;
	int32		rlen;

	if (c < 0x80 || U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_P_MASK | U_GC_Z_MASK | U_GC_CF_MASK))
	{
		key_add(kb, c);
		return;
	}
	U16_APPEND_UNSAFE(src, n, c);
	rlen = translit(open_translit(&latin_ascii, "Latin-ASCII"), src, n, &res);
	key_add_uchars(kb, res, rlen);
	pfree(res);
}

/* Feed a Latin-script word to the key through the per-code-point table */
static void
key_add_latin(KeyBuf *kb, const UChar *u, int32 len)
{
	int32		i = 0;

	if (latin_table == NULL)
	{
		latin_table = MemoryContextAlloc(TopMemoryContext,
										 LATIN_TABLE_SIZE * sizeof(LatinEntry));
		for (int k = 0; k < LATIN_TABLE_SIZE; k++)
			latin_table[k].len = -1;
	}
	while (i < len)
	{
		UChar32		c;
		int			idx;
		LatinEntry *e;

		U16_NEXT(u, i, len, c);
		idx = latin_index(c);
		if (idx < 0)
		{
			key_add_rare_latin(kb, c);
			continue;
		}
		e = &latin_table[idx];
		if (e->len < 0)
		{
			UChar		src[2];
			int32		n = 0;
			UChar	   *res;
			int32		rlen;

			U16_APPEND_UNSAFE(src, n, c);
			rlen = translit(open_translit(&latin_ascii, "Latin-ASCII"), src, n, &res);
			if (rlen > (int32) lengthof(e->out))
				rlen = 0;		/* cannot happen with ICU's rules */
			memcpy(e->out, res, rlen * sizeof(UChar));
			e->len = rlen;
		}
		key_add_uchars(kb, e->out, e->len);
	}
}

/*
 * Words in other scripts go through "Any-Latin; Latin-ASCII".  Names repeat,
 * so short words are cached per backend (the cache is dropped when full; the
 * result never depends on it).
 */
#define WORD_CACHE_MAXLEN	32
#define WORD_CACHE_ENTRIES	16384

typedef struct WordKey
{
	int32		len;
	UChar		word[WORD_CACHE_MAXLEN];
} WordKey;

typedef struct WordEntry
{
	WordKey		key;
	int32		outlen;
	UChar	   *out;
} WordEntry;

static HTAB *word_cache = NULL;
static MemoryContext word_cache_cxt = NULL;

/* Return the word cache, creating (or recreating when full) it */
static HTAB *
get_word_cache(void)
{
	HASHCTL		ctl;

	if (word_cache && hash_get_num_entries(word_cache) < WORD_CACHE_ENTRIES)
		return word_cache;
	if (word_cache_cxt)
		MemoryContextDelete(word_cache_cxt);
	word_cache_cxt = AllocSetContextCreate(TopMemoryContext, "crm match_key word cache",
										   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(WordKey);
	ctl.entrysize = sizeof(WordEntry);
	ctl.hcxt = word_cache_cxt;
	word_cache = hash_create("crm match_key words", 1024, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return word_cache;
}

/* Feed a word in a non-Latin script to the key */
static void
key_add_other(KeyBuf *kb, const UChar *u, int32 len)
{
	UTransliterator *tr = open_translit(&any_latin, "Any-Latin; Latin-ASCII");
	UChar	   *res;
	int32		rlen;

	if (len <= WORD_CACHE_MAXLEN)
	{
		WordKey		key;
		WordEntry  *e;
		bool		found;
		HTAB	   *cache = get_word_cache();

		memset(&key, 0, sizeof(key));
		key.len = len;
		memcpy(key.word, u, len * sizeof(UChar));
		e = hash_search(cache, &key, HASH_FIND, NULL);
		if (e == NULL)
		{
			rlen = translit(tr, u, len, &res);
			e = hash_search(cache, &key, HASH_ENTER, &found);
			e->out = MemoryContextAlloc(word_cache_cxt, Max(rlen, 1) * sizeof(UChar));
			memcpy(e->out, res, rlen * sizeof(UChar));
			e->outlen = rlen;
		}
		key_add_uchars(kb, e->out, e->outlen);
		return;
	}
	for (int32 start = 0; start < len;)
	{
		int32		end = Min(len, start + KEY_CHUNK);

		if (end < len && U16_IS_LEAD(u[end - 1]))
			end--;
		rlen = translit(tr, u + start, end - start, &res);
		key_add_uchars(kb, res, rlen);
		pfree(res);
		start = end;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Build the match key of a UTF-8 string into kb->out (UTF-8).  Text is
 * transliterated word by word (words are runs between white space), so the
 * key of a string is the keys of its words joined by one space.
 */
static void
match_key_utf8(KeyBuf *kb, const char *s, int32 len)
{
	bool		ascii = true;
	UChar	   *u;
	int32		ulen;
	int32		i = 0;
	int32		words = 0;
	UErrorCode	status = U_ZERO_ERROR;

	initStringInfo(&kb->out);
	kb->pending_space = false;

	for (int32 k = 0; k < len; k++)
		if ((unsigned char) s[k] >= 0x80)
		{
			ascii = false;
			break;
		}
	if (ascii)
	{
		for (int32 k = 0; k < len; k++)
			key_add(kb, (unsigned char) s[k]);
		return;
	}

	u = palloc((len + 1) * sizeof(UChar));
	u_strFromUTF8Lenient(u, len + 1, &ulen, s, len, &status);
	if (U_FAILURE(status))
		elog(ERROR, "could not convert to UTF-16: %s", u_errorName(status));

	while (i < ulen)
	{
		int32		start = i;
		bool		w_ascii = true;
		bool		w_latin = true;

		/* white space between words */
		if (u_isUWhiteSpace(u[i]))
		{
			kb->pending_space = true;
			i++;
			continue;
		}
		/* one word: classify its script as we go */
		while (i < ulen && !u_isUWhiteSpace(u[i]))
		{
			UChar32		c;

			U16_NEXT(u, i, ulen, c);
			if (c >= 0x80)
			{
				w_ascii = false;
				if (w_latin && !latin_script(c))
					w_latin = false;
			}
		}
		if (w_ascii)
			key_add_uchars(kb, u + start, i - start);
		else if (w_latin)
			key_add_latin(kb, u + start, i - start);
		else
			key_add_other(kb, u + start, i - start);
		if (++words % 1024 == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(u);
}

/* Match key of a text datum, as text in the server encoding */
static text *
match_key_text(text *t)
{
	int32		len;
	char	   *utf8 = server_to_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &len);
	KeyBuf		kb;
	char	   *res;

	match_key_utf8(&kb, utf8, len);
	res = utf8_to_server(kb.out.data, kb.out.len);
	return cstring_to_text(res);
}

PG_FUNCTION_INFO_V1(crm_match_key);
Datum
crm_match_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(match_key_text(PG_GETARG_TEXT_PP(0)));
}

/* Decode UTF-8 into at most max code points */
static int32 *
decode_utf8(const char *s, int32 len, int32 max, int32 *n)
{
	int32	   *cp = palloc(Max(Min(len, max), 1) * sizeof(int32));
	int32		i = 0;

	*n = 0;
	while (i < len && *n < max)
	{
		UChar32		c;

		U8_NEXT(s, i, len, c);
		cp[(*n)++] = c;
	}
	return cp;
}

/* Jaro-Winkler similarity of two code point arrays (0 when either is empty) */
static double
jaro_winkler(const int32 *a, int32 la, const int32 *b, int32 lb)
{
	bool	   *ma,
			   *mb;
	int32		window,
				matches = 0,
				trans = 0,
				prefix = 0,
				k = 0;
	double		jaro;

	if (la == 0 || lb == 0)
		return 0.0;
	window = Max(Max(la, lb) / 2 - 1, 0);
	ma = palloc0(la * sizeof(bool));
	mb = palloc0(lb * sizeof(bool));
	for (int32 i = 0; i < la; i++)
	{
		int32		lo = Max(0, i - window);
		int32		hi = Min(lb - 1, i + window);

		for (int32 j = lo; j <= hi; j++)
			if (!mb[j] && a[i] == b[j])
			{
				ma[i] = mb[j] = true;
				matches++;
				break;
			}
	}
	if (matches == 0)
		return 0.0;
	for (int32 i = 0; i < la; i++)
	{
		if (!ma[i])
			continue;
		while (!mb[k])
			k++;
		if (a[i] != b[k])
			trans++;
		k++;
	}
	jaro = ((double) matches / la + (double) matches / lb +
			(double) (matches - trans / 2) / matches) / 3.0;
	while (prefix < Min(4, Min(la, lb)) && a[prefix] == b[prefix])
		prefix++;
	return jaro + prefix * 0.1 * (1.0 - jaro);
}

/* qsort comparator for words */
static int
cmp_words(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The key with its words in sorted order */
static char *
sorted_words(const char *key)
{
	char	   *copy = pstrdup(key);
	char	  **words = palloc((strlen(key) / 2 + 2) * sizeof(char *));
	int			n = 0;
	char	   *save = NULL;
	StringInfoData out;

	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	qsort(words, n, sizeof(char *), cmp_words);
	initStringInfo(&out);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&out, ' ');
		appendStringInfoString(&out, words[i]);
	}
	return out.data;
}

/*
 * Romanisation skeleton of a key: spellings that differ only by how a name
 * was romanised (y/j/i, doubled letters, an h after a consonant, German
 * ae/oe/ue for a/o/u) map to the same skeleton.
 */
static char *
skeleton(const char *key)
{
	int			len = strlen(key);
	char	   *out = palloc(len + 1);
	int			n = 0;

	for (int i = 0; i < len; i++)
	{
		char		c = key[i];

		if ((unsigned char) c >= 0x80)
		{
			out[n++] = c;
			continue;
		}
		if (c == 'y' || c == 'j')
			c = 'i';
		else if (c == 'h' && n > 0 && strchr("aeiou ", out[n - 1]) == NULL)
			continue;
		else if (c == 'e' && n > 0 && strchr("aou", out[n - 1]) != NULL &&
				 (i + 1 == len || strchr("aeiou", key[i + 1]) == NULL))
			continue;
		if (n > 0 && out[n - 1] == c && c != ' ')
			continue;
		out[n++] = c;
	}
	out[n] = '\0';
	return out;
}

/* Jaro-Winkler of two UTF-8 strings */
static double
jw_utf8(const char *a, const char *b)
{
	int32		na,
				nb;
	int32	   *ca = decode_utf8(a, strlen(a), SIMILARITY_MAX_LEN, &na);
	int32	   *cb = decode_utf8(b, strlen(b), SIMILARITY_MAX_LEN, &nb);

	return jaro_winkler(ca, na, cb, nb);
}

/* Best Jaro-Winkler over the plain, word-sorted and skeleton forms */
static double
name_similarity_utf8(const char *ka, const char *kb)
{
	double		best;
	char	   *sa,
			   *sb;

	if (*ka == '\0' || *kb == '\0')
		return 0.0;
	if (strcmp(ka, kb) == 0)
		return 1.0;
	best = jw_utf8(ka, kb);
	sa = sorted_words(ka);
	sb = sorted_words(kb);
	best = Max(best, jw_utf8(sa, sb));
	best = Max(best, jw_utf8(skeleton(ka), skeleton(kb)));
	best = Max(best, jw_utf8(skeleton(sa), skeleton(sb)));
	return best;
}

PG_FUNCTION_INFO_V1(crm_name_similarity);
Datum
crm_name_similarity(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	int32		la,
				lb;
	char	   *ua = server_to_utf8(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), &la);
	char	   *ub = server_to_utf8(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &lb);
	KeyBuf		ka,
				kb;

	match_key_utf8(&ka, ua, la);
	match_key_utf8(&kb, ub, lb);
	PG_RETURN_FLOAT8(name_similarity_utf8(ka.out.data, kb.out.data));
}
