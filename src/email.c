/*
 * email.c
 *		The crm.email base type: an e-mail address normalised with ICU.
 *
 * Input trims surrounding white space, applies Unicode NFC, case-folds the
 * local part and converts the domain to its lower-case ASCII (IDNA UTS #46)
 * form, so two spellings of one mailbox compare equal byte for byte.  The
 * stored value is the normalised text in the server encoding, laid out like
 * text, so comparison is a memcmp and hashing a hash_any.
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include <unicode/uchar.h>
#include <unicode/uidna.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "crm.h"
#include "type_ops.h"

/* RFC 5321 section 4.5.3.1: limits in octets */
#define EMAIL_MAX_LOCAL		64
#define EMAIL_MAX_DOMAIN	255
#define EMAIL_MAX_ADDRESS	254

/* Upper bound on the input we look at, in bytes, before any ICU work */
#define EMAIL_MAX_INPUT		1024

#define EMAIL_ERROR(input, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), \
			 errmsg("invalid input syntax for type email: \"%s\"", clip_for_message(input)), \
			 errdetail(__VA_ARGS__), \
			 errhint("An e-mail address is local-part@domain, without spaces.")))

static UIDNA *email_idna = NULL;

/* Long input is shown clipped in error messages (at a character boundary) */
static const char *
clip_for_message(const char *input)
{
	int			len = strlen(input);

	if (len <= 100)
		return input;
	return psprintf("%s...", pnstrdup(input, pg_mbcliplen(input, len, 100)));
}

/* Return the process-wide UTS #46 converter, opening it on first use */
static UIDNA *
get_idna(void)
{
	UErrorCode	status = U_ZERO_ERROR;

	if (email_idna)
		return email_idna;
	email_idna = uidna_openUTS46(UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI |
								 UIDNA_CHECK_CONTEXTJ |
								 UIDNA_NONTRANSITIONAL_TO_ASCII, &status);
	if (U_FAILURE(status))
		elog(ERROR, "could not open ICU IDNA converter: %s", u_errorName(status));
	return email_idna;
}

/* UTF-8 to a palloc'd UTF-16 buffer */
static UChar *
utf8_to_uchar(const char *s, int32 len, int32 *ulen)
{
	UErrorCode	status = U_ZERO_ERROR;
	UChar	   *buf = palloc((len + 1) * sizeof(UChar));

	u_strFromUTF8(buf, len + 1, ulen, s, len, &status);
	if (U_FAILURE(status))
		elog(ERROR, "could not convert to UTF-16: %s", u_errorName(status));
	return buf;
}

/* UTF-16 to a palloc'd, NUL-terminated UTF-8 buffer */
static char *
uchar_to_utf8(const UChar *s, int32 ulen, int32 *len)
{
	UErrorCode	status = U_ZERO_ERROR;
	int32		cap = ulen * 3 + 1;
	char	   *buf = palloc(cap);

	u_strToUTF8(buf, cap, len, s, ulen, &status);
	if (U_FAILURE(status))
		elog(ERROR, "could not convert to UTF-8: %s", u_errorName(status));
	buf[*len] = '\0';
	return buf;
}

/* NFC-normalise, optionally case-folding first */
static UChar *
normalize_uchar(const UChar *s, int32 ulen, bool fold, int32 *outlen)
{
	UErrorCode	status = U_ZERO_ERROR;
	const UNormalizer2 *nfc = unorm2_getNFCInstance(&status);
	UChar	   *src = (UChar *) s;
	int32		srclen = ulen;
	int32		cap;
	UChar	   *dst;

	if (U_FAILURE(status))
		elog(ERROR, "could not load ICU NFC data: %s", u_errorName(status));
	if (fold)
	{
		/* case folding can expand a character to at most three */
		cap = ulen * 3 + 1;
		src = palloc(cap * sizeof(UChar));
		srclen = u_strFoldCase(src, cap, s, ulen, U_FOLD_CASE_DEFAULT, &status);
		if (U_FAILURE(status))
			elog(ERROR, "could not case-fold: %s", u_errorName(status));
	}
	/* NFC of a string is at most three times as long (Unicode UAX #15) */
	cap = srclen * 3 + 1;
	dst = palloc(cap * sizeof(UChar));
	*outlen = unorm2_normalize(nfc, src, srclen, dst, cap, &status);
	if (U_FAILURE(status))
		elog(ERROR, "could not normalise: %s", u_errorName(status));
	return dst;
}

/* Describe the first IDNA error bit set, for the error detail */
static const char *
idna_error_text(uint32 errors)
{
	if (errors & UIDNA_ERROR_EMPTY_LABEL)
		return "has an empty label (two dots in a row, or a leading or trailing dot)";
	if (errors & UIDNA_ERROR_LABEL_TOO_LONG)
		return "has a label longer than 63 octets";
	if (errors & UIDNA_ERROR_DOMAIN_NAME_TOO_LONG)
		return "is longer than 253 octets";
	if (errors & (UIDNA_ERROR_LEADING_HYPHEN | UIDNA_ERROR_TRAILING_HYPHEN |
				  UIDNA_ERROR_HYPHEN_3_4))
		return "has a label that starts or ends with a hyphen";
	if (errors & UIDNA_ERROR_DISALLOWED)
		return "contains a character not allowed in domain names";
	if (errors & UIDNA_ERROR_PUNYCODE)
		return "contains an invalid punycode label";
	if (errors & UIDNA_ERROR_BIDI)
		return "mixes right-to-left and left-to-right text in a way IDNA forbids";
	if (errors & UIDNA_ERROR_CONTEXTJ)
		return "has a zero-width joiner or non-joiner where IDNA does not allow one";
	if (errors & UIDNA_ERROR_LEADING_COMBINING_MARK)
		return "has a label that starts with a combining mark";
	return "is not a valid internationalised domain name";
}

/* Raise 22P02 with the detail or, when quiet, return 0 (false, NULL) */
#define EMAIL_FAIL(...) \
	do { \
		if (quiet) \
			return 0; \
		EMAIL_ERROR(input, __VA_ARGS__); \
	} while (0)

/* Check the local part's characters and dots (RFC 5322 dot-atom, unquoted) */
static bool
check_local_part(const char *input, const char *local, int32 len, bool quiet)
{
	if (len > EMAIL_MAX_LOCAL)
		EMAIL_FAIL("The local part is %d octets long; at most %d are allowed.",
					len, EMAIL_MAX_LOCAL);
	if (local[0] == '.' || local[len - 1] == '.' || strstr(local, "..") != NULL)
		EMAIL_FAIL("The local part may not start or end with a dot or contain two dots in a row.");
	for (int i = 0; i < len; i++)
		if (strchr("\"(),:;<>[\\]", local[i]) != NULL)
			EMAIL_FAIL("The local part contains \"%c\"; quoted local parts are not supported.",
					   local[i]);
	return true;
}

/*
 * Normalise an address given in the server encoding; return it, in the
 * server encoding, or raise 22P02 naming what is wrong (quiet: NULL).
 */
static char *
email_normalize(const char *input, bool quiet)
{
	const char *start = input;
	const char *end;
	int32		len,
				ulen,
				nlen,
				at = -1,
				nat = 0;
	char	   *utf8;
	UChar	   *u,
			   *norm,
			   *local;
	int32		locallen;
	char	   *local8,
			   *domain8,
			   *ascii;
	int32		local8len,
				domain8len,
				asciilen;
	UErrorCode	status = U_ZERO_ERROR;
	UIDNAInfo	info = UIDNA_INFO_INITIALIZER;
	char	   *result;

	/* trim ASCII white space; inner white space is refused below */
	while (*start && isspace((unsigned char) *start))
		start++;
	end = start + strlen(start);
	while (end > start && isspace((unsigned char) end[-1]))
		end--;
	if (end == start)
		EMAIL_FAIL("The address is empty.");
	if (end - start > EMAIL_MAX_INPUT)
		EMAIL_FAIL("The address is %d octets long; at most %d are allowed.",
					(int) (end - start), EMAIL_MAX_ADDRESS);

	utf8 = server_to_utf8(start, end - start, &len);
	u = utf8_to_uchar(utf8, len, &ulen);
	norm = normalize_uchar(u, ulen, false, &nlen);

	/*
	 * By code point, not UTF-16 unit, so that a format character outside the
	 * BMP is seen.  ZWNJ and ZWJ after the "@" are IDNA's to judge (CONTEXTJ).
	 */
	for (int32 i = 0; i < nlen;)
	{
		int32		pos = i;
		UChar32		c;

		U16_NEXT(norm, i, nlen, c);
		if ((u_isUWhiteSpace(c) || u_iscntrl(c)) &&
			!(nat > 0 && (c == 0x200C || c == 0x200D)))
			EMAIL_FAIL("The address contains U+%04X, which is white space, a control character or an invisible format character.",
						(unsigned) c);
		if (c == '@')
		{
			at = pos;
			nat++;
		}
	}
	if (nat == 0)
		EMAIL_FAIL("The address has no \"@\".");
	if (nat > 1)
		EMAIL_FAIL("The address has more than one \"@\".");
	if (at == 0)
		EMAIL_FAIL("The local part (before \"@\") is empty.");
	if (at == nlen - 1)
		EMAIL_FAIL("The domain (after \"@\") is empty.");

	/* local part: case-folded, NFC */
	local = normalize_uchar(norm, at, true, &locallen);
	local8 = uchar_to_utf8(local, locallen, &local8len);
	if (!check_local_part(input, local8, local8len, quiet))
		return NULL;

	/* domain: UTS #46 maps to lower case and converts to A-labels */
	domain8 = uchar_to_utf8(norm + at + 1, nlen - at - 1, &domain8len);
	ascii = palloc(EMAIL_MAX_INPUT * 4);
	asciilen = uidna_nameToASCII_UTF8(get_idna(), domain8, domain8len,
									  ascii, EMAIL_MAX_INPUT * 4 - 1,
									  &info, &status);
	if (U_FAILURE(status) || info.errors != 0)
		EMAIL_FAIL("The domain \"%s\" %s.",
					pnstrdup(domain8, domain8len), idna_error_text(info.errors));
	ascii[asciilen] = '\0';
	/* after the mapping, which turns U+3002, U+FF0E and U+FF61 into "." */
	if (asciilen == 0)
		EMAIL_FAIL("The domain (after \"@\") is empty.");
	if (ascii[asciilen - 1] == '.')
		EMAIL_FAIL("The domain may not end with a dot.");
	if (asciilen > EMAIL_MAX_DOMAIN)
		EMAIL_FAIL("The domain is %d octets long; at most %d are allowed.",
					asciilen, EMAIL_MAX_DOMAIN);
	if (local8len + 1 + asciilen > EMAIL_MAX_ADDRESS)
		EMAIL_FAIL("The address is %d octets long; at most %d are allowed.",
					local8len + 1 + asciilen, EMAIL_MAX_ADDRESS);

	result = psprintf("%s@%s", local8, ascii);
	return utf8_to_server(result, strlen(result));
}

/* Build an email datum from normalised text */
static text *
email_from_cstring(const char *input)
{
	return cstring_to_text(email_normalize(input, false));
}

/* Three-way comparison of arguments 0 and 1 (normalised addresses), byte by byte */
static int
email_compare(FunctionCallInfo fcinfo)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	int			la = VARSIZE_ANY_EXHDR(a);
	int			lb = VARSIZE_ANY_EXHDR(b);
	int			c = memcmp(VARDATA_ANY(a), VARDATA_ANY(b), Min(la, lb));

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	if (c != 0)
		return c;
	return (la > lb) - (la < lb);
}

/* The part of a stored address before or after its "@" */
static text *
email_part(text *t, bool domain)
{
	char	   *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	char	   *at = memchr(s, '@', len);

	if (at == NULL)
		elog(ERROR, "stored email value has no \"@\"");
	if (domain)
		return cstring_to_text_with_len(at + 1, len - (at - s) - 1);
	return cstring_to_text_with_len(s, at - s);
}

PG_FUNCTION_INFO_V1(crm_email_in);
Datum
crm_email_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(email_from_cstring(PG_GETARG_CSTRING(0)));
}

PG_FUNCTION_INFO_V1(crm_email_out);
Datum
crm_email_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}

/* Binary input re-validates: a client may send anything */
PG_FUNCTION_INFO_V1(crm_email_recv);
Datum
crm_email_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *str = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);

	PG_RETURN_TEXT_P(email_from_cstring(str));
}

PG_FUNCTION_INFO_V1(crm_email_send);
Datum
crm_email_send(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendtext(&buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Cast from text: same rules as input */
PG_FUNCTION_INFO_V1(crm_email_from_text);
Datum
crm_email_from_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(email_from_cstring(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/*
 * Text to an address, NULL when it is not one: the right side of
 * "email = text", so a partial address in a filter matches nothing
 */
PG_FUNCTION_INFO_V1(crm_email_or_null);
Datum
crm_email_or_null(PG_FUNCTION_ARGS)
{
	char	   *norm = email_normalize(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);

	if (norm == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(norm));
}

/* crm_email_eq, _ne, _lt, _le, _gt, _ge and crm_email_cmp */
TYPE_OPS_COMPARISON(crm_email, email_compare)

/* Stored like text and compared byte by byte, so core's varlena hash fits */
PG_FUNCTION_INFO_V1(crm_email_hash);
Datum
crm_email_hash(PG_FUNCTION_ARGS)
{
	return hashvarlena(fcinfo);
}

PG_FUNCTION_INFO_V1(crm_email_hash_extended);
Datum
crm_email_hash_extended(PG_FUNCTION_ARGS)
{
	return hashvarlenaextended(fcinfo);
}

/* The part after the "@", in its ASCII (punycode) form */
PG_FUNCTION_INFO_V1(crm_email_domain);
Datum
crm_email_domain(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(email_part(PG_GETARG_TEXT_PP(0), true));
}

/* The part before the "@", case-folded */
PG_FUNCTION_INFO_V1(crm_email_local);
Datum
crm_email_local(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(email_part(PG_GETARG_TEXT_PP(0), false));
}
