/* placeholder: replaced by the module's implementation */
typedef int placeholder_unit;
