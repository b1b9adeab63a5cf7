/*
 * phone.cc: the C++ shim over libphonenumber behind phone.h. Everything C++
 * stays in this file: the library's objects live on this file's stack or in
 * its own singleton, exceptions (std::bad_alloc from a std::string) are
 * caught here, and the answer crosses to C as a char array and a static
 * sentence.
 */
#include "phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <cstring>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

const char *const kNotANumber =
    "is not a phone number: type it like +7 916 765-43-21, or without + as it is dialled "
    "in the program's country (8 916 765-43-21)";

/* The sentence for a number that parsed but cannot be one of its country. */
const char *possible_why(PhoneNumberUtil::ValidationResult r)
{
    switch (r) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE: return "has an unknown country code after +";
    case PhoneNumberUtil::TOO_SHORT: return "has too few digits for a phone number of its country";
    case PhoneNumberUtil::TOO_LONG: return "has too many digits for a phone number of its country";
    default: return "has the wrong number of digits for a phone number of its country";
    }
}

bool e164(const char *typed, const char *region, char *out, size_t out_size, const char **why)
{
    const PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    std::string text(typed);
    std::string default_region = region && region[0] ? region : "ZZ";
    PhoneNumber number;
    PhoneNumberUtil::ErrorType err = util->Parse(text, default_region, &number);
    switch (err) {
    case PhoneNumberUtil::NO_PARSING_ERROR: break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        *why = default_region == "ZZ"
                   ? "must start with + and the country code (the program names no country "
                     "for numbers typed without it)"
                   : "has an unknown country code after +";
        return false;
    case PhoneNumberUtil::TOO_SHORT_NSN:
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
        *why = "has too few digits for a phone number";
        return false;
    case PhoneNumberUtil::TOO_LONG_NSN:
        *why = "has too many digits for a phone number";
        return false;
    default: *why = kNotANumber; return false;
    }
    if (number.has_extension()) {
        *why = "must not hold an extension";
        return false;
    }
    PhoneNumberUtil::ValidationResult possible = util->IsPossibleNumberWithReason(number);
    if (possible != PhoneNumberUtil::IS_POSSIBLE) {
        *why = possible_why(possible);
        return false;
    }
    if (!util->IsValidNumber(number)) {
        *why = "is not a number in use in its country (no such operator or area code)";
        return false;
    }
    std::string formatted;
    util->Format(number, PhoneNumberUtil::E164, &formatted);
    if (formatted.size() + 1 > out_size) {
        *why = "has too many digits for a phone number";
        return false;
    }
    std::memcpy(out, formatted.c_str(), formatted.size() + 1);
    return true;
}

} // namespace

extern "C" bool kp_phone_e164(const char *typed, const char *region, char *out, size_t out_size,
                              const char **why)
{
    if (out_size > 0) out[0] = '\0';
    if (typed == nullptr || std::strlen(typed) > KP_PHONE_TYPED_MAX) {
        *why = "is too long for a phone number";
        return false;
    }
    try {
        return e164(typed, region, out, out_size, why);
    } catch (...) {
        if (out_size > 0) out[0] = '\0';
        *why = "could not be read (out of memory)";
        return false;
    }
}

extern "C" bool kp_phone_region_known(const char *region)
{
    if (region == nullptr || std::strlen(region) != 2) return false;
    try {
        return PhoneNumberUtil::GetInstance()->GetCountryCodeForRegion(region) != 0;
    } catch (...) {
        return false;
    }
}
